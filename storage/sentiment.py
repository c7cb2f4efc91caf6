"""Queries on sentiment scores of free-text answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.reviews import flag_for_review
from storage.tables import Answer, Conversation, ReviewItem, SentimentScore

TEXT_TYPE = "text"


@dataclass(frozen=True, slots=True)
class PendingText:
    """A free-text answer waiting for a label from the current model."""

    answer_id: int
    conversation_id: int
    text: str


def unscored_answers(session: Session, *, model_version: str, limit: int) -> list[PendingText]:
    """Oldest free-text answers that this model version has not labelled yet."""
    scored = and_(
        col(SentimentScore.answer_id) == col(Answer.id),
        col(SentimentScore.model_version) == model_version,
    )
    stmt = (
        select(Answer.id, Answer.conversation_id, Answer.value_text)
        .outerjoin(SentimentScore, scored)
        .where(
            col(Answer.question_type) == TEXT_TYPE,
            col(Answer.skipped).is_(False),
            col(Answer.value_text).is_not(None),
            col(SentimentScore.id).is_(None),
        )
        .order_by(col(Answer.id))
        .limit(limit)
    )
    return [
        PendingText(answer_id=a, conversation_id=c, text=t)
        for a, c, t in session.exec(stmt)
        if a is not None and t is not None
    ]


def has_unlabelled_answers(session: Session) -> bool:
    """Whether any free-text answer has no label from any model (a cheap check before loading)."""
    stmt = (
        select(Answer.id)
        .outerjoin(SentimentScore, col(SentimentScore.answer_id) == col(Answer.id))
        .where(
            col(Answer.question_type) == TEXT_TYPE,
            col(Answer.skipped).is_(False),
            col(Answer.value_text).is_not(None),
            col(SentimentScore.id).is_(None),
        )
        .limit(1)
    )
    return session.exec(stmt).first() is not None


def add_score(
    session: Session,
    *,
    answer_id: int,
    label: str,
    confidence: float,
    model_id: str,
    model_version: str,
    language: str | None = None,
) -> SentimentScore:
    """Store one label (with the text's language when known); earlier labels from other model
    versions stay as history."""
    score = SentimentScore(
        answer_id=answer_id,
        label=label,
        confidence=confidence,
        model_id=model_id[:256],
        model_version=model_version[:64],
        language=language[:8] if language else None,
    )
    session.add(score)
    session.flush()
    return score


def add_score_if_new(
    session: Session,
    *,
    answer_id: int,
    label: str,
    confidence: float,
    model_id: str,
    model_version: str,
    language: str | None = None,
) -> bool:
    """Store one label unless this model version labelled the answer already; False then.

    Another process may have labelled the same answer meanwhile: only this label is dropped
    (a savepoint), the rest of the caller's transaction goes on.
    """
    try:
        with session.begin_nested():
            add_score(
                session,
                answer_id=answer_id,
                label=label,
                confidence=confidence,
                model_id=model_id,
                model_version=model_version,
                language=language,
            )
    except IntegrityError:
        return False
    return True


def flag_labelled_answer(
    session: Session, *, item: PendingText, reasons: list[dict[str, Any]]
) -> ReviewItem:
    """Open (or extend) the review item of the conversation that `item`'s answer belongs to."""
    conversation = session.get(Conversation, item.conversation_id)
    assert conversation is not None
    return flag_for_review(session, conversation=conversation, reasons=reasons)


def scores_for_answer(session: Session, *, answer_id: int) -> list[SentimentScore]:
    """Every label given to an answer, oldest first."""
    stmt = (
        select(SentimentScore)
        .where(SentimentScore.answer_id == answer_id)
        .order_by(col(SentimentScore.id))
    )
    return list(session.exec(stmt))
