"""Queries on conversations (the engine's persisted state) and the answers given in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from storage.tables import Answer, Conversation, ConversationState, Customer, utcnow

# `state = 'active'` as a constant, not a bind parameter: SQLite prepares a statement again
# on every run when a bound value could decide whether a partial index (`uq_conversation_active`
# and the reminder indexes) applies — the turn's read of its survey cost 170 µs instead of 10.
IS_ACTIVE: Any = col(Conversation.state) == literal_column(f"'{ConversationState.ACTIVE}'")

# Built once, run with parameters: building a statement costs more than running it on SQLite.
_ACTIVE = (
    select(Conversation)
    .where(Conversation.customer_id == bindparam("customer_id"), IS_ACTIVE)
    # Two processes handling the same customer's messages must take turns (PostgreSQL).
    .with_for_update()
)
_LATEST = (
    select(Conversation)
    .where(Conversation.customer_id == bindparam("customer_id"))
    .order_by(col(Conversation.id).desc())
)
_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
# What `save_progress` writes.
PROGRESS_COLUMNS = (
    "current_question",
    "invalid_attempts",
    "updated_at",
    "remind_at",
    "reminders_sent",
    "expires_at",
    "pending_score",
)
_SAVE_PROGRESS = (
    update(_CONVERSATION)
    .where(_CONVERSATION.c.id == bindparam("conversation_id"))
    .values({name: bindparam(name) for name in PROGRESS_COLUMNS})
)
_INSERT_ANSWER = insert(Answer.__table__)  # type: ignore[attr-defined]
_ANSWERS = (
    select(Answer)
    .where(Answer.conversation_id == bindparam("conversation_id"))
    .order_by(col(Answer.id))
)


class _Keep:
    """`save_progress`: keep the value the conversation object has."""


KEEP = _Keep()


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer just stored: its id (for the flags that point at it)."""

    id: int


def active_conversation(session: Session, *, customer_id: int) -> Conversation | None:
    """The customer's unfinished conversation, locked for this transaction where supported."""
    return session.exec(_ACTIVE, params={"customer_id": customer_id}).first()


def latest_conversation(session: Session, *, customer_id: int) -> Conversation | None:
    """The customer's most recent conversation in any state."""
    return session.exec(_LATEST, params={"customer_id": customer_id}).first()


def start_conversation(
    session: Session,
    *,
    customer_id: int,
    channel: str,
    flow_id: str,
    flow_version: int,
    locale: str,
    context: dict[str, Any],
    expires_at: datetime | None = None,
) -> Conversation:
    """Create an active conversation (the caller ends any previous one first); `expires_at`:
    when it closes if still unfinished (`storage.reminders`)."""
    conversation = Conversation(
        customer_id=customer_id,
        channel=channel,
        flow_id=flow_id,
        flow_version=flow_version,
        locale=locale,
        context=dict(context),
        expires_at=expires_at,
    )
    session.add(conversation)
    session.flush()
    return conversation


def save_progress(
    session: Session,
    *,
    conversation: Conversation,
    current_question: str | None,
    invalid_attempts: int = 0,
    pending_score: int | None = None,
    remind_at: datetime | _Keep | None = KEEP,
    hold: dict[int, dict[str, Any]] | None = None,
) -> None:
    """Move the conversation to its next question (None with `end_conversation`), writing its
    reminder schedule (`remind_at` — given here, or as the object has it — `reminders_sent`,
    `expires_at`) with it.

    `pending_score`: a score read from a sentence that awaits the customer's confirmation; every
    other save forgets it (the question moved on, or was asked again).

    One UPDATE by id rather than the unit of work's flush (every turn does this); the object
    gets the written values as already stored, so no later flush repeats them. Any other
    change made to the object is still written by the next flush, as before.

    `hold`: keep the UPDATE's values there (by conversation id, a later save replacing an
    earlier one) for `storage.turn_state.write_turn_rows` to write with the turn's outbox rows.
    """
    assert conversation.id is not None
    values = {
        "current_question": current_question,
        "invalid_attempts": invalid_attempts,
        "updated_at": utcnow(),
        "remind_at": conversation.remind_at if isinstance(remind_at, _Keep) else remind_at,
        "reminders_sent": conversation.reminders_sent,
        "expires_at": conversation.expires_at,
        "pending_score": pending_score,
    }
    if hold is not None:
        hold[conversation.id] = values
    else:
        # On the session's connection: no autoflush (else a pending schedule would be written
        # first, twice) and none of the ORM's per-statement work.
        write_progress(session, conversation_id=conversation.id, values=values)
    for name, value in values.items():
        set_committed_value(conversation, name, value)


def write_progress(session: Session, *, conversation_id: int, values: dict[str, Any]) -> None:
    """The UPDATE of `save_progress` (its `values`)."""
    session.connection().execute(_SAVE_PROGRESS, {"conversation_id": conversation_id, **values})


def end_conversation(
    session: Session, *, conversation: Conversation, state: ConversationState
) -> None:
    """Close the conversation as completed, abandoned or opted out.

    One UPDATE by id, as `save_progress`: the object gets the values as already stored.
    """
    assert conversation.id is not None
    now = utcnow()
    values: dict[str, Any] = {"state": state, "current_question": None, "updated_at": now}
    if state == ConversationState.COMPLETED:
        values["completed_at"] = now
    session.connection().execute(
        update(_CONVERSATION).where(_CONVERSATION.c.id == conversation.id).values(values)
    )
    for name, value in values.items():
        set_committed_value(conversation, name, value)


def add_answer(
    session: Session,
    *,
    conversation: Conversation,
    question_id: str,
    question_type: str,
    raw_text: str,
    value_int: int | None = None,
    value_text: str | None = None,
    scale: tuple[int, int] | None = None,
    skipped: bool = False,
    truncated: bool = False,
    late: bool = False,
) -> StoredAnswer:
    """Store one answer under the conversation's flow id and version (`late`: a late comment,
    written after the thanks or after the survey expired); its id.

    A plain INSERT, not an ORM object: every turn stores one, and the unit of work's flush
    cost more than the rest of the turn's SQL.
    """
    values = answer_row(
        conversation,
        question_id=question_id,
        question_type=question_type,
        raw_text=raw_text,
        value_int=value_int,
        value_text=value_text,
        scale=scale,
        skipped=skipped,
        truncated=truncated,
        late=late,
    )
    return write_answer(session, values)


def write_answer(session: Session, values: dict[str, Any]) -> StoredAnswer:
    """The INSERT of an answer's row (`answer_row`); its id."""
    result = session.connection().execute(_INSERT_ANSWER, values)
    key = result.inserted_primary_key
    assert key is not None
    return StoredAnswer(id=int(key[0]))


def answer_row(
    conversation: Conversation,
    *,
    question_id: str,
    question_type: str,
    raw_text: str,
    value_int: int | None,
    value_text: str | None,
    scale: tuple[int, int] | None,
    skipped: bool,
    truncated: bool,
    late: bool,
) -> dict[str, Any]:
    """One answer's row under the conversation's flow id and version, answered now: for
    `write_answer` at once, or held for `storage.turn_state.write_turn_rows` to write with the
    turn's outbox rows (an answer nothing needs the id of)."""
    assert conversation.id is not None
    return {
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
        "channel": conversation.channel,
        "flow_id": conversation.flow_id,
        "flow_version": conversation.flow_version,
        "question_id": question_id,
        "question_type": question_type,
        "raw_text": raw_text,
        "value_int": value_int,
        "value_text": value_text,
        "scale_min": scale[0] if scale else None,
        "scale_max": scale[1] if scale else None,
        "skipped": skipped,
        "truncated": truncated,
        "late": late,
        "answered_at": utcnow(),
    }


def conversation_answers(session: Session, *, conversation_id: int) -> list[Answer]:
    """Every answer of a conversation, in the order given."""
    return list(session.exec(_ANSWERS, params={"conversation_id": conversation_id}))


def mark_undelivered(
    session: Session, *, conversation: Conversation, redeliver_at: datetime | None
) -> None:
    """Record that the bot's last message did not arrive; try again at `redeliver_at`.

    `redeliver_at=None` leaves it to the customer's next message (no background retry).
    """
    if conversation.undelivered_at is None:
        conversation.undelivered_at = utcnow()
        conversation.redeliver_attempts = 0
    conversation.redeliver_at = redeliver_at
    session.add(conversation)
    session.flush()


def schedule_redelivery(
    session: Session, *, conversation: Conversation, redeliver_at: datetime | None
) -> None:
    """After a failed background attempt: count it, and try again at `redeliver_at` (or never)."""
    conversation.redeliver_attempts += 1
    conversation.redeliver_at = redeliver_at
    session.add(conversation)
    session.flush()


def clear_undelivered(session: Session, *, conversation: Conversation) -> None:
    """The customer has the current question again (sent, or they wrote): nothing to redeliver."""
    conversation.undelivered_at = None
    conversation.redeliver_at = None
    conversation.redeliver_attempts = 0
    session.add(conversation)
    session.flush()


def claim_redeliveries(
    session: Session,
    *,
    channels: Sequence[str],
    now: datetime,
    hold_until: datetime,
    limit: int,
) -> list[tuple[str, str]]:
    """(channel, customer's platform id) of active surveys on `channels` due a resend, claimed.

    Claiming moves `redeliver_at` to `hold_until`, so another process skips them meanwhile and
    a process that dies half-way leaves them to be tried again then.
    """
    stmt = (
        select(Conversation, Customer)
        .join(Customer, col(Customer.id) == col(Conversation.customer_id))
        .where(
            IS_ACTIVE,
            col(Conversation.channel).in_(channels),
            col(Conversation.undelivered_at).is_not(None),
            col(Conversation.redeliver_at).is_not(None),
            col(Conversation.redeliver_at) <= now,
        )
        .order_by(col(Conversation.redeliver_at))
        .limit(limit)
        .with_for_update(of=Conversation, skip_locked=True)
    )
    claimed: list[tuple[str, str]] = []
    for conversation, customer in session.exec(stmt).all():
        conversation.redeliver_at = hold_until
        session.add(conversation)
        claimed.append((conversation.channel, customer.external_id))
    session.flush()
    return claimed


def late_comment_count(session: Session, *, conversation_id: int) -> int:
    """How many late comments (after the thanks, or after expiry) a survey has kept."""
    stmt = (
        select(func.count())
        .select_from(Answer)
        .where(Answer.conversation_id == conversation_id, col(Answer.late).is_(True))
    )
    return int(session.exec(stmt).one())
