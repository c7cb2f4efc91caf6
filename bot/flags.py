"""Flag rules: which answers put a survey response into the support team's review queue."""

from __future__ import annotations

from typing import Any

from bot.config import FlagSettings
from bot.flow_model import Question, QuestionType

CES_REFERENCE_SCALE = (1, 7)


def rescale(value: int, bounds: tuple[int, int], target: tuple[int, int]) -> float:
    """Map `value` linearly from `bounds` onto `target` (a 1–5 CES answer onto 1–7)."""
    lo, hi = bounds
    t_lo, t_hi = target
    return t_lo + (value - lo) * (t_hi - t_lo) / (hi - lo)


def score_flags(
    question: Question, value: int, settings: FlagSettings, *, answer_id: int | None
) -> list[dict[str, Any]]:
    """The review reasons a score answer raises (empty when it raises none)."""
    if question.type == QuestionType.NPS and value <= settings.nps_max:
        code, detail = "nps_detractor", f"NPS {value} (detractor)"
    elif question.type == QuestionType.CSAT and value <= settings.csat_max:
        code, detail = "low_csat", f"CSAT {value} of {question.bounds[1]}"
    elif question.type == QuestionType.CES and (
        rescale(value, question.bounds, CES_REFERENCE_SCALE) <= settings.ces_max
    ):
        code, detail = (
            "low_ces",
            f"CES {value} on a {question.bounds[0]}–{question.bounds[1]} scale",
        )
    else:
        return []
    return [{"code": code, "question_id": question.id, "answer_id": answer_id, "detail": detail}]
