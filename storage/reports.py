"""Read-only queries behind `cxbot report`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from storage.tables import Answer

SCORE_TYPES = ("nps", "ces", "csat")


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One stored score answer, with the scale it was asked on."""

    flow_id: str
    channel: str
    question_type: str
    value: int
    scale_min: int | None
    scale_max: int | None
    answered_at: datetime | None = None  # naive UTC on SQLite, aware on PostgreSQL


def score_answers(
    session: Session,
    *,
    flow_id: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ScoreRow]:
    """Every non-skipped NPS, CES and CSAT answer, optionally for one flow or channel and
    answered in [since, until)."""
    stmt = select(Answer).where(
        col(Answer.question_type).in_(SCORE_TYPES),
        col(Answer.skipped).is_(False),
        col(Answer.value_int).is_not(None),
        col(Answer.late).is_(False),  # a late comment is feedback, not an answer
    )
    if flow_id is not None:
        stmt = stmt.where(Answer.flow_id == flow_id)
    if channel is not None:
        stmt = stmt.where(Answer.channel == channel)
    if since is not None:
        stmt = stmt.where(Answer.answered_at >= since)
    if until is not None:
        stmt = stmt.where(Answer.answered_at < until)
    return [
        ScoreRow(
            flow_id=a.flow_id,
            channel=a.channel,
            question_type=a.question_type,
            value=a.value_int,
            scale_min=a.scale_min,
            scale_max=a.scale_max,
            answered_at=a.answered_at,
        )
        for a in session.exec(stmt)
        if a.value_int is not None
    ]


def late_comment_count(
    session: Session, *, flow_id: str | None = None, channel: str | None = None
) -> int:
    """How many late comments are stored: written after a survey's thanks or after it expired."""
    stmt = select(func.count()).select_from(Answer).where(col(Answer.late).is_(True))
    if flow_id is not None:
        stmt = stmt.where(Answer.flow_id == flow_id)
    if channel is not None:
        stmt = stmt.where(Answer.channel == channel)
    return int(session.exec(stmt).one())
