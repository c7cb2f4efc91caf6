"""The turn's one-statement read (`storage.turn_state`): the customer, their active survey and
the chat's live and pressed questions, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine

from storage import conversations as conv_q
from storage import customers as cust_q
from storage import outbox as out_q
from storage.database import transaction
from storage.tables import Conversation, ConversationState
from storage.turn_state import HeldWrites, TurnState, read_turn_state, write_turn_rows

LANE = "telegram:42"


def _start_survey(db: Engine) -> Conversation:
    """Customer telegram:42 with an active survey of the default flow."""
    with transaction(db) as s:
        customer = cust_q.upsert_customer(s, channel="telegram", external_id="42")
        assert customer.id is not None
        return conv_q.start_conversation(
            s,
            customer_id=customer.id,
            channel="telegram",
            flow_id="default",
            flow_version=1,
            locale="en",
            context={},
        )


def _read(db: Engine, *, pressed: str | None = None) -> TurnState | None:
    with transaction(db) as s:
        return read_turn_state(
            s, channel="telegram", external_id="42", lane=LANE, platform_message_id=pressed
        )


def _question(db: Engine, question_id: str, *, platform_id: str | None = None) -> int:
    """Queue a question with buttons (and record it sent as `platform_id`); its row id."""
    with transaction(db) as s:
        row = out_q.new_row(
            channel="telegram",
            recipient="42",
            kind=out_q.KIND_MESSAGE,
            body={"text": question_id},
            question_id=question_id,
        )
        out_q.insert_rows(s, [row])
        live = out_q.open_question(s, lane=LANE)
        assert live is not None
        if platform_id is not None:
            out_q.record_sent(
                s, message_id=live.id, platform_message_id=platform_id, platform_chat=None
            )
        return live.id


def test_nothing_is_read_without_an_active_survey(db: Engine) -> None:
    assert _read(db) is None  # an unknown customer
    conversation = _start_survey(db)
    with transaction(db) as s:
        conv_q.end_conversation(s, conversation=conversation, state=ConversationState.COMPLETED)
    assert _read(db) is None  # a finished survey: the caller reads the long way


def test_the_customer_survey_and_questions_in_one_read(db: Engine) -> None:
    with transaction(db) as s:
        customer = cust_q.upsert_customer(s, channel="telegram", external_id="42", first_name="Ann")
        assert customer.id is not None
        conv_q.start_conversation(
            s,
            customer_id=customer.id,
            channel="telegram",
            flow_id="default",
            flow_version=1,
            locale="en",
            context={"order": "A1"},
        )
    state = _read(db)
    assert state is not None
    assert (state.customer.first_name, state.active.context) == ("Ann", {"order": "A1"})
    assert (state.live, state.pressed) == (None, None)

    first = _question(db, "nps", platform_id="501")
    with transaction(db) as s:
        out_q.mark_closed(s, row_id=first, label="9")
    second = _question(db, "ces", platform_id="502")
    state = _read(db, pressed="501")
    assert state is not None and state.live is not None and state.pressed is not None
    assert (state.live.id, state.live.question_id, state.live.closed_at) == (second, "ces", None)
    assert (state.pressed.id, state.pressed.chosen_label) == (first, "9")
    assert state.pressed.closed_at is not None
    state = _read(db, pressed="999")  # a message the bot does not know
    assert state is not None and state.pressed is None and state.live is not None


def test_held_writes_go_in_with_the_outbox_rows(db: Engine) -> None:
    """An answer, the survey's progress and a closed question held back, then written with the
    turn's rows (one statement on PostgreSQL): all of it stored, in order."""
    conversation = _start_survey(db)
    asked = _question(db, "nps", platform_id="501")
    with transaction(db) as s:
        state = read_turn_state(
            s, channel="telegram", external_id="42", lane=LANE, platform_message_id="501"
        )
        assert state is not None
        held = HeldWrites()
        held.answers.append(
            conv_q.answer_row(
                state.active,
                question_id="nps",
                question_type="nps",
                raw_text="a:nps:9",
                value_int=9,
                value_text=None,
                scale=(0, 10),
                skipped=False,
                truncated=False,
                late=False,
            )
        )
        conv_q.save_progress(
            s, conversation=state.active, current_question="ces", hold=held.progress
        )
        held.closes.append((asked, "9"))
        rows = [
            out_q.new_row(
                channel="telegram",
                recipient="42",
                kind=kind,
                body={"text": f"{kind} ✓", "nested": {"n": 1}},
                question_id="ces" if kind == out_q.KIND_MESSAGE else None,
            )
            for kind in (out_q.KIND_BUTTON, out_q.KIND_CLOSE, out_q.KIND_MESSAGE)
        ]
        write_turn_rows(s, rows, held)
        assert not held
    with transaction(db) as s:
        (answer,) = conv_q.conversation_answers(s, conversation_id=conversation.id or 0)
        assert (answer.question_id, answer.value_int, answer.scale_max) == ("nps", 9, 10)
        active = conv_q.active_conversation(s, customer_id=conversation.customer_id)
        assert active is not None and active.current_question == "ces"
        live = out_q.open_question(s, lane=LANE)
        assert live is not None and (live.question_id, live.body["text"]) == ("ces", "message ✓")
        assert live.body["nested"] == {"n": 1}
        pressed = read_turn_state(
            s, channel="telegram", external_id="42", lane=LANE, platform_message_id="501"
        )
        assert pressed is not None and pressed.pressed is not None
        assert pressed.pressed.chosen_label == "9" and pressed.pressed.closed_at is not None
