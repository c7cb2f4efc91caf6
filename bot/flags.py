"""Flag rules: which answers put a survey response into the support team's review queue."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
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


@lru_cache(maxsize=16)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [re.escape(k.strip().lower()) for k in keywords if k.strip()]
    if not words:
        return None
    # Whole words, with common inflections: "refund" matches "refunds", "refunded".
    return re.compile(r"\b(" + "|".join(words) + r")(?:s|es|ed|ing|led|ling)?\b", re.IGNORECASE)


def keyword_flags(
    question_id: str, text: str, keywords: Sequence[str], *, answer_id: int | None
) -> list[dict[str, Any]]:
    """A `keyword` reason when a text answer mentions a churn-risk word."""
    pattern = _keyword_pattern(tuple(keywords))
    if pattern is None:
        return []
    found = sorted({m.group(1).lower() for m in pattern.finditer(text)})
    if not found:
        return []
    detail = "mentions " + ", ".join(f"'{w}'" for w in found)
    return [
        {"code": "keyword", "question_id": question_id, "answer_id": answer_id, "detail": detail}
    ]


def sentiment_flags(
    *,
    question_id: str,
    answer_id: int,
    label: str,
    confidence: float,
    nps: int | None,
    csat: int | None,
    settings: FlagSettings,
) -> list[dict[str, Any]]:
    """Reasons a labelled text raises: confidently negative, and negative beside a high score."""
    if label != "negative" or confidence < settings.negative_confidence:
        return []
    base = {"question_id": question_id, "answer_id": answer_id}
    reasons = [{"code": "negative_text", **base, "detail": f"negative ({confidence:.0%})"}]
    high = []
    if nps is not None and nps >= settings.mismatch_nps_min:
        high.append(f"NPS {nps}")
    if csat is not None and csat >= settings.mismatch_csat_min:
        high.append(f"CSAT {csat}")
    if high:
        detail = f"{' and '.join(high)} but the comment is negative"
        reasons.append({"code": "score_text_mismatch", **base, "detail": detail})
    return reasons
