"""What a turn writes to the outbox, in the turn's own transaction.

The engine decides the replies; this module turns them, and the bookkeeping of buttons around
them, into outbox rows (`storage.outbox`) that the delivery worker (`bot.delivery`) sends:

1. a pressed button is answered first (Telegram stops its spinner);
2. the question that was answered has its buttons closed: a pressed one shows the chosen
   label, one answered by typing just loses its buttons;
3. each reply follows; a new question with buttons first closes the previous live one, so a
   chat has at most one question with live buttons.

Which question's buttons are live is data (the outbox rows' `closed_at`), not memory: after a
restart a second tap on an answered question still gets "Already answered: 8" instead of a
turn. Console conversations are printed by their caller and have no outbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.messages import (
    ButtonPress,
    Choice,
    ChoiceStyle,
    IncomingMessage,
    MessageKind,
    Notice,
    OutgoingMessage,
)
from bot.texts import bot_text
from storage import outbox as out_q
from storage.database import Session
from storage.turn_state import HeldWrites, write_turn_rows

# Channels whose messages go through the outbox (the console prints its replies itself).
OUTBOX_CHANNELS = frozenset({"telegram", "slack"})


def uses_outbox(channel: str) -> bool:
    """Whether replies on `channel` are delivered by the outbox worker."""
    return channel in OUTBOX_CHANNELS


# -- (de)serialising messages -----------------------------------------------------------------


def message_body(message: OutgoingMessage) -> dict[str, Any]:
    """An outgoing message as the JSON an outbox row keeps."""
    return {
        "text": message.text,
        "choices": [[c.label, c.payload] for c in message.choices],
        "choice_style": str(message.choice_style),
        "question_id": message.question_id,
        "question_type": message.question_type,
    }


def message_from_body(channel: str, recipient: str, body: Mapping[str, Any]) -> OutgoingMessage:
    """The outgoing message an outbox row keeps."""
    return OutgoingMessage(
        channel=channel,
        user_id=recipient,
        text=str(body.get("text") or ""),
        choices=tuple(Choice(label=str(c[0]), payload=str(c[1])) for c in body.get("choices", [])),
        choice_style=ChoiceStyle(body.get("choice_style") or ChoiceStyle.OPTIONS),
        question_id=body.get("question_id"),
        question_type=body.get("question_type"),
    )


def enqueue_message(
    session: Session,
    message: OutgoingMessage,
    *,
    purpose: str = "survey",
    review_item_id: int | None = None,
) -> None:
    """Queue one message; a question with buttons first closes the recipient's live one."""
    rows: list[dict[str, Any]] = []
    held = HeldWrites()
    if message.choices:
        live = out_q.open_question(session, lane=out_q.lane_of(message.channel, message.user_id))
        if live is not None:
            _close_live(held, rows, message.channel, message.user_id, live)
    rows.append(_message_row(message, purpose=purpose, review_item_id=review_item_id))
    write_turn_rows(session, rows, held)


def enqueue_notice(session: Session, notice: Notice) -> None:
    """Queue a one-line notice: as a button's answer when it answers one, else a message."""
    if notice.query_id is not None:
        out_q.enqueue(
            session,
            channel=notice.channel,
            recipient=notice.recipient,
            kind=out_q.KIND_BUTTON,
            body={"query_id": notice.query_id, "chat": None, "text": notice.text},
            purpose="notice",
        )
        return
    message = OutgoingMessage(channel=notice.channel, user_id=notice.recipient, text=notice.text)
    enqueue_message(session, message, purpose="notice")


# -- one turn ---------------------------------------------------------------------------------


def pressed_question(session: Session, msg: IncomingMessage) -> out_q.QuestionRow | None:
    """The sent question a button press was made on, if the bot knows it (one lookup a turn)."""
    press = msg.press
    if msg.kind != MessageKind.BUTTON or press is None or press.message_id is None:
        return None
    lane = out_q.lane_of(msg.channel, msg.user_id)
    return out_q.question_by_platform_id(session, lane=lane, platform_message_id=press.message_id)


def closed_press(
    session: Session, msg: IncomingMessage, pressed: out_q.QuestionRow | None, locale: str
) -> bool:
    """A tap on buttons already closed: queue a short notice and return True (no turn).

    The notice says which answer was chosen there, or that the question is closed.
    """
    if pressed is None or pressed.closed_at is None or msg.press is None:
        return False
    if pressed.chosen_label is not None:
        text = bot_text("already_answered", locale, label=pressed.chosen_label)
    else:
        text = bot_text("closed", locale)
    rows: list[dict[str, Any]] = []
    _answer_button(rows, msg, msg.press, text)
    out_q.insert_rows(session, rows)
    return True


class _Unknown:
    """Not looked up yet."""


UNKNOWN = _Unknown()


def write_turn(
    session: Session,
    msg: IncomingMessage,
    replies: Sequence[OutgoingMessage],
    *,
    pressed: out_q.QuestionRow | None = None,
    live: out_q.QuestionRow | _Unknown | None = UNKNOWN,
    held: HeldWrites | None = None,
) -> None:
    """Queue everything the turn decided to send, in the order the customer should see it.

    `pressed`: `pressed_question`'s answer for this turn's press, if any. `live`: the chat's
    question with live buttons when the turn read it already (`UNKNOWN`: not read). `held`: the
    turn's writes held back so far (its answer, the survey's progress), written with the rows.
    The rows go in with one statement at the end (`storage.turn_state.write_turn_rows`: on
    PostgreSQL with the held writes and the closing of answered questions); which question of
    the chat still has live buttons is looked up at most once, and not at all when known or when
    this turn has just closed the live one.
    """
    held = held if held is not None else HeldWrites()
    rows: list[dict[str, Any]] = []
    press = msg.press if msg.kind == MessageKind.BUTTON else None
    answered = next((r.answered for r in replies if r.answered is not None), None)
    if press is not None:
        _answer_button(rows, msg, press, None)
    if press is not None and press.message_id is not None:
        # A pressed question shows the choice when the press answered it; else (a button of a
        # question no longer asked) it just loses its buttons.
        label = press.label if answered is not None else None
        if pressed is not None and pressed.closed_at is None:
            live = None  # it was the live one (there is at most one), and closes now
        _close_pressed(held, rows, msg, press, pressed, label)
    elif answered is not None:
        # Answered by typing, or by a press on a message the platform no longer shows.
        if isinstance(live, _Unknown):
            live = _open_question(session, held, msg.channel, msg.user_id)
        if live is not None and live.question_id == answered:
            _close_live(held, rows, msg.channel, msg.user_id, live)
            live = None
    for reply in replies:
        if reply.choices:
            if isinstance(live, _Unknown):
                live = _open_question(session, held, reply.channel, reply.user_id)
            if live is not None:
                _close_live(held, rows, reply.channel, reply.user_id, live)
            live = UNKNOWN
            if any(row["question_id"] is not None for row in rows):
                # A second question in one turn closes the first, which needs its id.
                write_turn_rows(session, rows, held)
                rows.clear()
        rows.append(_message_row(reply, purpose="survey", review_item_id=None))
    write_turn_rows(session, rows, held)


def _open_question(
    session: Session, held: HeldWrites, channel: str, recipient: str
) -> out_q.QuestionRow | None:
    """`storage.outbox.open_question`, after the closes held so far are written."""
    if held.closes:
        write_turn_rows(session, [], held)
    return out_q.open_question(session, lane=out_q.lane_of(channel, recipient))


def _message_row(
    message: OutgoingMessage, *, purpose: str, review_item_id: int | None
) -> dict[str, Any]:
    return out_q.new_row(
        channel=message.channel,
        recipient=message.user_id,
        kind=out_q.KIND_MESSAGE,
        body=message_body(message),
        question_id=message.question_id if message.choices else None,
        purpose=purpose,
        review_item_id=review_item_id,
    )


def _answer_button(
    rows: list[dict[str, Any]], msg: IncomingMessage, press: ButtonPress, text: str | None
) -> None:
    if press.query_id is None and text is None:
        return  # nothing to answer: the platform was answered when the press arrived
    rows.append(
        out_q.new_row(
            channel=msg.channel,
            recipient=msg.user_id,
            kind=out_q.KIND_BUTTON,
            body={"query_id": press.query_id, "chat": press.chat, "text": text},
        )
    )


def _close_pressed(
    held: HeldWrites,
    rows: list[dict[str, Any]],
    msg: IncomingMessage,
    press: ButtonPress,
    row: out_q.QuestionRow | None,
    label: str | None,
) -> None:
    assert press.message_id is not None
    text = press.message_text
    if row is not None:
        held.closes.append((row.id, label))
        text = text if text is not None else str(row.body.get("text") or "")
    rows.append(
        out_q.new_row(
            channel=msg.channel,
            recipient=msg.user_id,
            kind=out_q.KIND_CLOSE,
            body={
                "ref": None,
                "message_id": press.message_id,
                "chat": press.chat,
                "text": text,
                "label": label,
            },
        )
    )


def _close_row(channel: str, recipient: str, ref: int | None, label: str | None) -> dict[str, Any]:
    return out_q.new_row(
        channel=channel,
        recipient=recipient,
        kind=out_q.KIND_CLOSE,
        body={"ref": ref, "message_id": None, "chat": None, "text": None, "label": label},
    )


def _close_live(
    held: HeldWrites,
    rows: list[dict[str, Any]],
    channel: str,
    recipient: str,
    live: out_q.QuestionRow,
) -> None:
    """Take the buttons off the chat's live question (no label: it was not pressed)."""
    rows.append(_close_row(channel, recipient, live.id, None))
    held.closes.append((live.id, None))
