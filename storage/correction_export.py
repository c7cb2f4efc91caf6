"""The query behind `cxbot nlp corrections export`: people's label corrections as training rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.tables import Answer, LabelCorrection


@dataclass(frozen=True, slots=True)
class CorrectedText:
    """The newest correction of one answer, with the text it labels."""

    correction_id: int
    answer_id: int
    text: str
    label: str
    model_label: str | None
    model_version: str | None
    actor: str
    created_at: datetime  # naive UTC on SQLite, aware on PostgreSQL


@dataclass(frozen=True, slots=True)
class CorrectionExport:
    """What an export found: the rows to write, and how many were left out for blank text."""

    rows: list[CorrectedText]
    blank: int


def export_corrections(session: Session, *, since: datetime | None = None) -> CorrectionExport:
    """The newest correction of every answer (if made at or after ``since``), oldest first.

    Answers whose text is blank — erased, expired or never written — are counted, not returned:
    there is nothing to learn from them. An answer deleted by an erasure has no row to join.
    """
    newer = aliased(LabelCorrection)
    # The newest correction (highest id, as `storage.label_corrections` shows it) is the label
    # people see: an older one was overruled and must not teach the model a label taken back.
    overruled = exists(
        select(col(newer.id)).where(
            col(newer.answer_id) == col(LabelCorrection.answer_id),
            col(newer.id) > col(LabelCorrection.id),
        )
    )
    stmt = (
        select(LabelCorrection, Answer.value_text)
        .join(Answer, col(Answer.id) == col(LabelCorrection.answer_id))
        .where(~overruled)
        .order_by(col(LabelCorrection.id))
    )
    if since is not None:
        stmt = stmt.where(col(LabelCorrection.created_at) >= since.astimezone(UTC))
    rows: list[CorrectedText] = []
    blank = 0
    for correction, text in session.exec(stmt):
        if text is None or not text.strip():
            blank += 1
            continue
        assert correction.id is not None
        rows.append(
            CorrectedText(
                correction_id=correction.id,
                answer_id=correction.answer_id,
                text=text,
                label=correction.new_label,
                model_label=correction.model_label,
                model_version=correction.model_version,
                actor=correction.actor,
                created_at=correction.created_at,
            )
        )
    return CorrectionExport(rows=rows, blank=blank)
