"""Queries on sentiment labels as people see them: a person's correction wins over the model.

The model's labels stay in `sentimentscore` (re-scoring adds rows); a correction adds a
`labelcorrection` row that keeps the label shown before it and the model's own label beside
it. The label shown for an answer is its newest correction, else its newest model label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from storage.tables import LabelCorrection, SentimentScore, as_utc, utcnow


@dataclass(frozen=True, slots=True)
class ShownLabel:
    """The label shown for one answer, with the model's own verdict and who corrected it."""

    answer_id: int
    label: str | None  # None: neither the model nor a person labelled it yet
    confidence: float | None  # the model's, when the model's label is shown; None if corrected
    model_label: str | None
    model_confidence: float | None
    model_id: str | None
    model_version: str | None
    corrected_by: str | None
    corrected_at: datetime | None


def shown_labels(session: Session, *, answer_ids: Iterable[int]) -> dict[int, ShownLabel]:
    """The shown label of each answer (those with no label at all are left out); two queries."""
    ids = sorted(set(answer_ids))
    if not ids:
        return {}
    model: dict[int, SentimentScore] = {}
    for row in session.exec(
        select(SentimentScore)
        .where(col(SentimentScore.answer_id).in_(ids))
        .order_by(col(SentimentScore.id))
    ):
        model[row.answer_id] = row  # the newest wins
    corrected: dict[int, LabelCorrection] = {}
    for done in session.exec(
        select(LabelCorrection)
        .where(col(LabelCorrection.answer_id).in_(ids))
        .order_by(col(LabelCorrection.id))
    ):
        corrected[done.answer_id] = done
    shown: dict[int, ShownLabel] = {}
    for answer_id in ids:
        score = model.get(answer_id)
        fix = corrected.get(answer_id)
        if score is None and fix is None:
            continue
        shown[answer_id] = ShownLabel(
            answer_id=answer_id,
            label=fix.new_label if fix is not None else score.label if score else None,
            confidence=score.confidence if score is not None and fix is None else None,
            model_label=score.label if score else None,
            model_confidence=score.confidence if score else None,
            model_id=score.model_id if score else None,
            model_version=score.model_version if score else None,
            corrected_by=fix.actor if fix else None,
            corrected_at=as_utc(fix.created_at) if fix else None,
        )
    return shown


def add_correction(
    session: Session, *, answer_id: int, new_label: str, actor: str, now: datetime | None = None
) -> LabelCorrection:
    """Store a person's label for an answer, with the label shown before and the model's own.

    The caller checks that the label is valid and differs from the shown one.
    """
    before = shown_labels(session, answer_ids=[answer_id]).get(answer_id)
    fix = LabelCorrection(
        answer_id=answer_id,
        old_label=(before.label if before and before.label else "unlabelled")[:16],
        new_label=new_label[:16],
        model_label=before.model_label if before else None,
        model_id=before.model_id if before else None,
        model_version=before.model_version if before else None,
        actor=actor[:160],
        created_at=now or utcnow(),
    )
    session.add(fix)
    session.flush()
    return fix


def corrections_of(session: Session, *, answer_id: int) -> list[LabelCorrection]:
    """Every correction of an answer, oldest first."""
    stmt = (
        select(LabelCorrection)
        .where(LabelCorrection.answer_id == answer_id)
        .order_by(col(LabelCorrection.id))
    )
    return list(session.exec(stmt))
