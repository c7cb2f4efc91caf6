"""What a turn writes to the outbox (`bot.turn_outbox` through a real `Engine`), read back from
the outbox table: no platform and no delivery worker are involved.

Delivery is simulated where a test needs it by recording a row as sent with the platform id a
channel would have given it, as `bot.delivery` does.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import App
from bot.messages import ButtonPress, IncomingMessage, MessageKind
from storage import outbox as out_q
from storage.database import transaction
from storage.tables import Customer, OutboxMessage
from tests.fakes.telegram_setup import answers, conversations

TG = "telegram"
ANN = "42"
LANE = "telegram:42"
INTRO = "Hi there! We'd love your feedback on your recent request. It takes about a minute."
NPS = (
    "How likely are you to recommend us to a friend or colleague?\n"
    "(0 = Not at all likely, 10 = Extremely likely)"
)
LIKED = "Great to hear! What did you like most?"
STALE = "That button belongs to an earlier question. Here is the current one:"
ON_TIME = "Did your order arrive on time?"
PURCHASE_INTRO = "Hi there! Thanks for shopping with us. A few quick questions about your order."


def outbox(app: App, after: int = 0) -> list[OutboxMessage]:
    """The outbox rows (with id above `after`), oldest first."""
    with transaction(app.db) as s:
        stmt = select(OutboxMessage).where(col(OutboxMessage.id) > after)
        return list(s.exec(stmt.order_by(col(OutboxMessage.id))))


def last_id(app: App) -> int:
    rows = outbox(app)
    return (rows[-1].id or 0) if rows else 0


def shown(row: OutboxMessage) -> tuple[Any, ...]:
    """A row as the test reads it: what it sends, and to which message it refers."""
    body = row.body
    if row.kind == out_q.KIND_MESSAGE:
        return ("message", body["text"], row.question_id)
    if row.kind == out_q.KIND_BUTTON:
        return ("button", body["query_id"], body["text"])
    return ("close", body["ref"], body["message_id"], body["text"], body["label"])


def row_of(app: App, row_id: int | None) -> OutboxMessage:
    with transaction(app.db) as s:
        row = out_q.get_message(s, message_id=row_id or 0)
        assert row is not None
        return row


def delivered(app: App) -> dict[str, str]:
    """Record every queued message as sent, numbered as Telegram numbers a chat's messages:
    {question id (or text): platform message id}."""
    ids: dict[str, str] = {}
    rows = outbox(app)
    with transaction(app.db) as s:
        for n, row in enumerate(rows, start=1):
            if row.sent_at is None and row.kind == out_q.KIND_MESSAGE:
                assert row.id is not None
                out_q.record_sent(
                    s, message_id=row.id, platform_message_id=str(n), platform_chat=None
                )
                ids[row.question_id or row.body["text"]] = str(n)
    return ids


def press(
    payload: str,
    message_id: str | None,
    label: str | None,
    *,
    query_id: str | None = "q1",
    message_text: str | None = NPS,
    locale: str | None = None,
) -> IncomingMessage:
    """A button pressed in Ann's chat, as the Telegram adapter translates it."""
    return IncomingMessage(
        channel=TG,
        user_id=ANN,
        kind=MessageKind.BUTTON,
        payload=payload,
        locale=locale,
        press=ButtonPress(
            query_id=query_id, message_id=message_id, message_text=message_text, label=label
        ),
    )


def text(words: str) -> IncomingMessage:
    return IncomingMessage(channel=TG, user_id=ANN, text=words)


async def start(app: App, flow_id: str | None = None) -> dict[str, str]:
    """The bot opens a survey with Ann and its messages are delivered; their platform ids."""
    await app.engine.begin(channel=TG, user_id=ANN, flow_id=flow_id)
    return delivered(app)


# -- a turn's rows --------------------------------------------------------------------------------


async def test_opening_a_survey_queues_its_messages_with_the_question_live(app: App) -> None:
    await app.engine.begin(channel=TG, user_id=ANN)
    intro, nps = outbox(app)
    assert [shown(intro), shown(nps)] == [("message", INTRO, None), ("message", NPS, "nps")]
    assert (nps.lane, nps.recipient, nps.purpose) == (LANE, ANN, "survey")
    with transaction(app.db) as s:
        live = out_q.open_question(s, lane=LANE)
        assert live is not None and live.id == nps.id


async def test_a_press_queues_its_answer_then_the_close_with_the_label_then_the_replies(
    app: App,
) -> None:
    ids = await start(app)
    before = last_id(app)
    await app.engine.handle(press("a:nps:9", ids["nps"], "9"))
    assert [shown(r) for r in outbox(app, before)] == [
        ("button", "q1", None),
        ("close", None, ids["nps"], NPS, "9"),
        ("message", LIKED, None),
    ]
    nps = row_of(app, before)  # the question row itself
    assert nps.question_id == "nps"
    assert nps.closed_at is not None and nps.chosen_label == "9"
    assert [(a.question_id, a.value_int) for a in answers(app, ANN)] == [("nps", 9)]


async def test_a_press_without_the_message_text_closes_with_the_text_the_bot_sent(
    app: App,
) -> None:
    ids = await start(app)
    before = last_id(app)
    await app.engine.handle(press("a:nps:9", ids["nps"], "9", message_text=None))
    close = next(r for r in outbox(app, before) if r.kind == out_q.KIND_CLOSE)
    assert (close.body["text"], close.body["label"]) == (NPS, "9")


async def test_a_press_with_nothing_to_answer_queues_no_button_answer(app: App) -> None:
    """Where the platform was answered when the press arrived (no query id), only the close
    and the replies are queued."""
    ids = await start(app)
    before = last_id(app)
    await app.engine.handle(press("a:nps:9", ids["nps"], "9", query_id=None))
    assert [r.kind for r in outbox(app, before)] == ["close", "message"]


async def test_an_answer_typed_closes_the_live_question_without_a_label(app: App) -> None:
    await start(app)
    nps_row = last_id(app)
    await app.engine.handle(text("9"))
    assert [shown(r) for r in outbox(app, nps_row)] == [
        ("close", nps_row, None, None, None),
        ("message", LIKED, None),
    ]
    nps = row_of(app, nps_row)
    assert nps.closed_at is not None and nps.chosen_label is None
    with transaction(app.db) as s:
        assert out_q.open_question(s, lane=LANE) is None  # "What did you like most?" has none


async def test_a_new_question_closes_the_previous_live_one_first(app: App) -> None:
    await start(app)  # the default survey, waiting at NPS
    nps_row = last_id(app)
    await app.engine.begin(channel=TG, user_id=ANN, flow_id="post_purchase")  # replaces it
    new_rows = outbox(app, nps_row)
    # The new survey's intro, then the old buttons go just before the new ones appear.
    assert [shown(r)[:2] for r in new_rows] == [
        ("message", PURCHASE_INTRO),
        ("close", nps_row),
        ("message", ON_TIME),
    ]
    assert new_rows[-1].question_id == "on_time"
    assert row_of(app, nps_row).closed_at is not None
    with transaction(app.db) as s:
        live = out_q.open_question(s, lane=LANE)
        assert live is not None and live.id == new_rows[-1].id  # one live question per chat


async def test_a_press_that_does_not_answer_closes_its_question_without_a_label(
    app: App,
) -> None:
    """A button of a question no longer asked: its buttons go, no choice is shown, and the
    current question comes again (closing nothing twice)."""
    ids = await start(app, "post_purchase")
    before = last_id(app)
    await app.engine.handle(
        press("a:nps:9", ids["on_time"], "9", message_text=ON_TIME)  # a forged / old payload
    )
    assert [shown(r) for r in outbox(app, before)] == [
        ("button", "q1", None),
        ("close", None, ids["on_time"], ON_TIME, None),
        ("message", STALE, None),
        ("message", ON_TIME, "on_time"),
    ]
    assert row_of(app, before).chosen_label is None


# -- presses on closed buttons --------------------------------------------------------------------


async def test_a_second_press_on_an_answered_question_gets_already_answered_and_no_turn(
    app: App,
) -> None:
    ids = await start(app)
    await app.engine.handle(press("a:nps:9", ids["nps"], "9"))
    before = last_id(app)
    await app.engine.handle(press("a:nps:3", ids["nps"], "3", query_id="q2"))
    assert [shown(r) for r in outbox(app, before)] == [("button", "q2", "Already answered: 9")]
    # No turn: nothing stored, the survey still waits at the question after NPS.
    assert [(a.question_id, a.value_int) for a in answers(app, ANN)] == [("nps", 9)]
    (conv,) = conversations(app, ANN)
    assert conv.current_question == "liked_most"


async def test_the_closed_buttons_notice_is_in_the_customers_language(app: App) -> None:
    ids = await start(app)
    await app.engine.handle(press("a:nps:9", ids["nps"], "9"))
    before = last_id(app)
    await app.engine.handle(press("a:nps:3", ids["nps"], "3", query_id="q2", locale="es"))
    assert [shown(r) for r in outbox(app, before)] == [("button", "q2", "Ya respondiste: 9")]


async def test_a_press_on_a_question_answered_by_typing_says_it_is_closed(app: App) -> None:
    ids = await start(app)
    await app.engine.handle(text("9"))
    before = last_id(app)
    await app.engine.handle(press("a:nps:3", ids["nps"], "3", query_id="q2"))
    assert [shown(r) for r in outbox(app, before)] == [
        ("button", "q2", "This question is closed; please use the latest message.")
    ]
    assert [(a.question_id, a.value_int) for a in answers(app, ANN)] == [("nps", 9)]


async def test_closed_buttons_are_remembered_in_the_database(app: App) -> None:
    """A fresh engine (a restarted process) still answers a second tap with the notice."""
    from bot.engine import Engine

    ids = await start(app)
    await app.engine.handle(press("a:nps:9", ids["nps"], "9"))
    restarted = Engine(db=app.db, catalog=app.catalog, settings=app.settings)
    before = last_id(app)
    await restarted.handle(press("a:nps:9", ids["nps"], "9", query_id="q2"))
    assert [shown(r) for r in outbox(app, before)] == [("button", "q2", "Already answered: 9")]


async def test_a_press_on_a_message_no_longer_shown_still_closes_the_answered_question(
    app: App,
) -> None:
    await start(app)
    nps_row = last_id(app)
    await app.engine.handle(press("a:nps:9", None, None, message_text=None))
    assert [(a.question_id, a.value_int) for a in answers(app, ANN)] == [("nps", 9)]
    assert row_of(app, nps_row).closed_at is not None


# -- other channels, other paths ----------------------------------------------------------------


async def test_console_turns_write_no_outbox_rows(app: App) -> None:
    replies = await app.engine.begin(channel="console", user_id="ann")
    assert replies  # printed by the console itself
    await app.engine.handle(IncomingMessage(channel="console", user_id="ann", text="9"))
    await app.engine.handle(
        IncomingMessage(channel="console", user_id="ann", kind=MessageKind.BUTTON, payload="x")
    )
    assert outbox(app) == []


async def test_a_bad_link_apologises_before_the_survey(app: App) -> None:
    start_msg = IncomingMessage(channel=TG, user_id=ANN, kind=MessageKind.START, bad_link=True)
    await app.engine.handle(start_msg)
    assert [shown(r) for r in outbox(app)] == [
        (
            "message",
            "Sorry, that link is not valid any more, so here is our general survey.",
            None,
        ),
        ("message", INTRO, None),
        ("message", NPS, "nps"),
    ]


async def test_a_turn_whose_transaction_fails_queues_nothing(app: App) -> None:
    """The inbox worker runs the turn in its own transaction: replies commit with it or not."""
    start_msg = IncomingMessage(channel=TG, user_id=ANN, kind=MessageKind.START)
    with pytest.raises(RuntimeError, match="crash"), transaction(app.db) as s:
        turn = app.engine.turn_in(s, start_msg)
        assert len(turn.replies) == 2
        raise RuntimeError("crash before the commit")
    assert outbox(app) == []
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).first() is None
        app.engine.turn_in(s, start_msg)
    assert [r.kind for r in outbox(app)] == ["message", "message"]
