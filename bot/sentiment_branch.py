"""A flow condition on the sentiment of a text answer, decided inside the turn.

`when = { question = "comment", sentiment = "negative" }` asks a question only when the comment
reads negative. The label is the one people see when the answer has one already (a correction
wins over the model); otherwise the loaded model classifies the text right there, waiting at most
`[sentiment] branch_wait_seconds` for a model still loading. Without a model in time, the
condition is judged on the survey's own score: NPS 0–6 negative, 7–8 neutral, 9–10 positive;
else CSAT or CES by their place on the scale (lowest third negative, highest third positive).
No score either: no label, and the condition does not hold. A text in a language without a model
(`unclassified`) is judged on the score too.

The label decided here is not stored: the sentiment worker labels the answer as usual (the same
model gives the same label), so flags and alerts work exactly as for any other text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.flow_model import QuestionType
from nlp.classifier import Label, SentimentClassifier
from storage.database import Session
from storage.label_corrections import shown_labels
from storage.tables import Answer

log = logging.getLogger(__name__)

# The loaded model, waiting at most `timeout` seconds for one being loaded; None without one.
ModelSource = Callable[[float], SentimentClassifier | None]


def score_sentiment(rows: Sequence[Answer]) -> str | None:
    """The sentiment the survey's score implies (NPS first, then CSAT, then CES), or None."""
    latest: dict[str, Answer] = {}
    for row in rows:
        if row.value_int is not None and not row.skipped and not row.late:
            latest[row.question_type] = row
    nps = latest.get(QuestionType.NPS)
    if nps is not None and nps.value_int is not None:
        value = nps.value_int
        return "negative" if value <= 6 else "neutral" if value <= 8 else "positive"
    for kind in (QuestionType.CSAT, QuestionType.CES):
        scored = latest.get(kind)
        if scored is None or scored.value_int is None:
            continue
        low, high = scored.scale_min, scored.scale_max
        if low is None or high is None or high <= low:
            continue
        place = (scored.value_int - low) / (high - low)
        return "negative" if place < 1 / 3 else "positive" if place > 2 / 3 else "neutral"
    return None


def branch_sentiment(
    session: Session,
    rows: Sequence[Answer],
    question_id: str,
    *,
    model: ModelSource | None,
    wait: float,
) -> str | None:
    """The sentiment label of the latest answer to `question_id` for a branch (module doc)."""
    answer = next((r for r in reversed(rows) if r.question_id == question_id), None)
    if answer is None or answer.skipped or not (answer.value_text or answer.raw_text).strip():
        return None
    text = answer.value_text or answer.raw_text
    if answer.id is not None:
        shown = shown_labels(session, answer_ids=[answer.id]).get(answer.id)
        if shown is not None and shown.label not in (None, Label.UNCLASSIFIED):
            return shown.label
    classifier = model(wait) if model is not None else None
    if classifier is not None:
        try:
            label = classifier.classify([text])[0].label
        except Exception:  # the turn must go on: the score decides instead
            log.exception("classifying a text for a sentiment condition failed")
        else:
            # No model for the text's language: nothing is guessed, the score decides.
            if label is not Label.UNCLASSIFIED:
                return str(label)
    return score_sentiment(rows)
