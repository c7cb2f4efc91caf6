"""Reminders and expiry of open surveys: their schedule on the conversation row, and the claims
and records of the reminder worker (`bot.reminders`).

A survey's next reminder is due at `conversation.remind_at` and the survey closes at
`expires_at`; both are read only for active surveys, through partial indexes. The worker claims
one due survey per transaction — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that processes
never wait on each other and never both take one survey; SQLite has one writer — and decides
and records everything about it in that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from storage.conversations import IS_ACTIVE
from storage.tables import Conversation, ConversationState, Customer


def set_reminder(
    session: Session, *, conversation: Conversation, remind_at: datetime | None
) -> None:
    """When the survey's next reminder is due (None: no more reminders).

    Not flushed here: the turn writes it with its next flush (`save_progress`, or the commit),
    so scheduling costs the turn no statement of its own.
    """
    conversation.remind_at = remind_at
    session.add(conversation)


def set_expiry(
    session: Session, *, conversation: Conversation, expires_at: datetime | None
) -> None:
    """When the survey closes if still unfinished (None: never); flushed with the turn."""
    conversation.expires_at = expires_at
    session.add(conversation)


def _due(column: object) -> object:
    """Active surveys on the given channels whose `column` is due (bind parameters: now,
    channels), oldest first, locked; another process's locked rows are skipped."""
    due_at = col(column)
    return (
        select(Conversation, Customer)
        .join(Customer, col(Customer.id) == col(Conversation.customer_id))
        .where(
            IS_ACTIVE,  # a constant: the partial indexes' condition (storage.conversations)
            due_at <= bindparam("now"),
            col(Conversation.channel).in_(bindparam("channels", expanding=True)),
        )
        .order_by(due_at)
        .limit(1)
        .with_for_update(of=Conversation, skip_locked=True)
    )


# Built once, run with parameters. Two statements rather than one with OR: each walks its own
# partial index in due order and stops at the first row.
_EXPIRY_DUE = _due(Conversation.expires_at)
_REMINDER_DUE = _due(Conversation.remind_at)


def claim_due_survey(
    session: Session, *, channels: Sequence[str], now: datetime
) -> tuple[Conversation, Customer] | None:
    """One active survey on `channels` due to expire (first) or to be reminded, with its
    customer; locked until this transaction ends. None when nothing is due."""
    params = {"now": now, "channels": list(channels)}
    for stmt in (_EXPIRY_DUE, _REMINDER_DUE):
        row = session.exec(stmt, params=params).first()  # type: ignore[call-overload]
        if row is not None:
            conversation, customer = row
            return conversation, customer
    return None


def record_reminder(
    session: Session, *, conversation: Conversation, next_at: datetime | None
) -> None:
    """A reminder was queued: count it, and the next one is due at `next_at` (None: no more)."""
    conversation.reminders_sent += 1
    conversation.remind_at = next_at
    session.add(conversation)
    session.flush()


def postpone_reminder(
    session: Session, *, conversation: Conversation, remind_at: datetime | None
) -> None:
    """Move a due reminder (out of quiet hours, or after a failure); None drops it."""
    conversation.remind_at = remind_at
    session.add(conversation)
    session.flush()


def postpone_reminder_of(
    session: Session, *, conversation_id: int, remind_at: datetime | None
) -> None:
    """As `postpone_reminder`, by id (after the transaction that loaded it was rolled back)."""
    session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .values(remind_at=remind_at)
    )


def expire_conversation(session: Session, *, conversation: Conversation, now: datetime) -> None:
    """Close an unfinished survey: expired, no more reminders.

    `current_question` is kept: it says where the customer stopped.
    """
    conversation.state = ConversationState.EXPIRED
    conversation.remind_at = None
    conversation.updated_at = now
    session.add(conversation)
    session.flush()
