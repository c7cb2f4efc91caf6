"""Reading survey responses for export, a chunk of surveys at a time (bounded memory).

A response is a survey (conversation) with at least one answer. `response_chunk` reads the next
chunk after a survey id (keyset pagination): a handful of queries (surveys, their answers, the
answers' shown sentiment labels, review items, invitations' touchpoints). The caller reads each
chunk in a transaction of its own, so 100,000 responses stream through a few megabytes and no
transaction (on SQLite: the writer lock) is held while a slow client reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from storage.label_corrections import ShownLabel, shown_labels
from storage.tables import Answer, Conversation, Invitation, ReviewItem

CHUNK = 500


@dataclass(frozen=True, slots=True)
class ResponseFilter:
    """Which responses: surveys started in [since, until), optionally of one flow / channel /
    touchpoint."""

    since: datetime | None = None
    until: datetime | None = None
    flow_id: str | None = None
    channel: str | None = None
    touchpoint: str | None = None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One survey with its answers, their shown labels, its review item and touchpoint."""

    conversation: Conversation
    answers: list[Answer]
    labels: dict[int, ShownLabel] = field(default_factory=dict)
    review: ReviewItem | None = None
    touchpoint: str | None = None


def _filtered(stmt: Any, where: ResponseFilter) -> Any:
    stmt = stmt.where(exists().where(col(Answer.conversation_id) == col(Conversation.id)))
    if where.since is not None:
        stmt = stmt.where(col(Conversation.started_at) >= where.since)
    if where.until is not None:
        stmt = stmt.where(col(Conversation.started_at) < where.until)
    if where.flow_id is not None:
        stmt = stmt.where(Conversation.flow_id == where.flow_id)
    if where.channel is not None:
        stmt = stmt.where(Conversation.channel == where.channel)
    if where.touchpoint is not None:
        stmt = stmt.where(
            exists().where(
                col(Invitation.conversation_id) == col(Conversation.id),
                col(Invitation.touchpoint) == where.touchpoint,
            )
        )
    return stmt


def question_columns(session: Session, where: ResponseFilter) -> list[tuple[str, str]]:
    """(question id, question type) of every question answered in the range, in first-asked
    order: the export's columns, known before the first row is written."""
    surveys = _filtered(select(Conversation.id), where).subquery()
    rows = session.exec(
        select(Answer.question_id, Answer.question_type, Answer.id)
        .where(col(Answer.conversation_id).in_(select(surveys.c.id)))
        .where(col(Answer.late).is_(False))
        .order_by(col(Answer.id))
    )
    seen: dict[str, str] = {}
    for question_id, question_type, _ in rows:
        seen.setdefault(question_id, question_type)
    return list(seen.items())


def count_responses(session: Session, where: ResponseFilter) -> int:
    """How many responses the filter selects."""
    return int(session.exec(_filtered(select(func.count(col(Conversation.id))), where)).one())


def response_chunk(
    session: Session, where: ResponseFilter, *, after: int = 0, limit: int = CHUNK
) -> list[StoredResponse]:
    """The next `limit` selected responses with a survey id above `after`, oldest first."""
    surveys: list[Conversation] = list(
        session.exec(
            _filtered(select(Conversation), where)
            .where(col(Conversation.id) > after)
            .order_by(col(Conversation.id))
            .limit(limit)
        )
    )
    if not surveys:
        return []
    ids = [c.id for c in surveys if c.id is not None]
    answers: dict[int, list[Answer]] = {i: [] for i in ids}
    for answer in session.exec(
        select(Answer).where(col(Answer.conversation_id).in_(ids)).order_by(col(Answer.id))
    ):
        answers[answer.conversation_id].append(answer)
    labels = shown_labels(
        session,
        answer_ids=[a.id for group in answers.values() for a in group if a.id is not None],
    )
    reviews = {
        r.conversation_id: r
        for r in session.exec(select(ReviewItem).where(col(ReviewItem.conversation_id).in_(ids)))
    }
    touchpoints: dict[int, str | None] = {}
    for conversation_id, touchpoint in session.exec(
        select(Invitation.conversation_id, Invitation.touchpoint).where(
            col(Invitation.conversation_id).in_(ids)
        )
    ):
        if conversation_id is not None:
            touchpoints[conversation_id] = touchpoint
    return [
        StoredResponse(
            conversation=c,
            answers=answers[cid],
            labels={a.id: labels[a.id] for a in answers[cid] if a.id in labels},
            review=reviews.get(cid),
            touchpoint=touchpoints.get(cid),
        )
        for c, cid in zip(surveys, ids, strict=True)
    ]
