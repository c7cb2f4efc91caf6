"""Counts for `/metrics`, read from the database at scrape time.

The counts live in the tables rather than in process memory, so every `cxbot serve` process
reports the same totals and a restart loses nothing. Each is one grouped query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from storage.sentiment import TEXT_TYPE
from storage.tables import (
    Answer,
    DeliveryFailure,
    InboxUpdate,
    OutboxMessage,
    ReviewItem,
    SentimentScore,
)

LATENCY_SAMPLE = 500  # the newest labels the sentiment latency is measured over


@dataclass(frozen=True, slots=True)
class OpsCounts:
    """One snapshot of the operational counts; keys are label values (channel, flow...)."""

    turns: dict[str, int] = field(default_factory=dict)  # processed inbox updates per channel
    inbox_pending: dict[str, int] = field(default_factory=dict)
    answers: dict[tuple[str, str], int] = field(default_factory=dict)  # (flow, question type)
    flags: dict[str, int] = field(default_factory=dict)  # review items per status
    sentiment_backlog: int = 0
    sentiment_latencies: list[float] = field(default_factory=list)  # seconds, newest first
    outbox_pending: dict[str, int] = field(default_factory=dict)
    outbox_failed: dict[str, int] = field(default_factory=dict)
    delivery_failures: dict[str, int] = field(default_factory=dict)  # (channel) alert/reply log


def _grouped(session: Session, stmt: Any) -> dict[Any, int]:
    return {
        row[0] if len(row) == 2 else tuple(row[:-1]): int(row[-1]) for row in session.exec(stmt)
    }


def operational_counts(session: Session) -> OpsCounts:
    """Read every count `/metrics` reports."""
    turns = _grouped(
        session,
        select(InboxUpdate.channel, func.count())
        .where(col(InboxUpdate.processed_at).is_not(None))
        .group_by(col(InboxUpdate.channel)),
    )
    inbox_pending = _grouped(
        session,
        select(InboxUpdate.channel, func.count())
        .where(col(InboxUpdate.processed_at).is_(None))
        .group_by(col(InboxUpdate.channel)),
    )
    answers = _grouped(
        session,
        select(Answer.flow_id, Answer.question_type, func.count()).group_by(
            col(Answer.flow_id), col(Answer.question_type)
        ),
    )
    flags = _grouped(
        session,
        select(ReviewItem.status, func.count()).group_by(col(ReviewItem.status)),
    )
    backlog = session.exec(
        select(func.count())
        .select_from(Answer)
        .outerjoin(SentimentScore, col(SentimentScore.answer_id) == col(Answer.id))
        .where(
            col(Answer.question_type) == TEXT_TYPE,
            col(Answer.skipped).is_(False),
            col(Answer.value_text).is_not(None),
            col(SentimentScore.id).is_(None),
        )
    ).one()
    latency_rows = session.exec(
        select(SentimentScore.scored_at, Answer.answered_at)
        .join(Answer, col(Answer.id) == col(SentimentScore.answer_id))
        .order_by(col(SentimentScore.id).desc())
        .limit(LATENCY_SAMPLE)
    ).all()
    outbox_pending = _grouped(
        session,
        select(OutboxMessage.channel, func.count())
        .where(col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
        .group_by(col(OutboxMessage.channel)),
    )
    outbox_failed = _grouped(
        session,
        select(OutboxMessage.channel, func.count())
        .where(col(OutboxMessage.failed_at).is_not(None))
        .group_by(col(OutboxMessage.channel)),
    )
    failures = _grouped(
        session,
        select(DeliveryFailure.channel, func.count()).group_by(col(DeliveryFailure.channel)),
    )
    return OpsCounts(
        turns=turns,
        inbox_pending=inbox_pending,
        answers=answers,
        flags=flags,
        sentiment_backlog=int(backlog),
        sentiment_latencies=[_seconds(scored, answered) for scored, answered in latency_rows],
        outbox_pending=outbox_pending,
        outbox_failed=outbox_failed,
        delivery_failures=failures,
    )


def _seconds(later: datetime, earlier: datetime) -> float:
    # SQLite hands back naive datetimes, PostgreSQL aware ones: compare like with like.
    if (later.tzinfo is None) != (earlier.tzinfo is None):
        later, earlier = later.replace(tzinfo=None), earlier.replace(tzinfo=None)
    return max(0.0, (later - earlier).total_seconds())


def read_ops_counts(engine: Engine) -> OpsCounts:
    """`operational_counts` in a session of its own (reads only: no writer lock needed)."""
    with Session(engine) as session:
        return operational_counts(session)
