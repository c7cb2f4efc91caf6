"""The sentiment classifier contract that the rest of cxbot depends on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Label(StrEnum):
    """Sentiment of a free-text reply."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"
    #: The text's language has no configured model: no sentiment is guessed (confidence 0).
    UNCLASSIFIED = "unclassified"


#: The labels a model predicts, in index order (``unclassified`` is the router's, not a model's).
SENTIMENT_LABELS: tuple[str, ...] = tuple(
    label.value for label in (Label.NEGATIVE, Label.NEUTRAL, Label.POSITIVE)
)


@dataclass(frozen=True)
class Prediction:
    """One classified text: the label, its probability, and the probability of every label.

    ``scores`` always has the three label names as keys; a model without a neutral class
    reports ``0.0`` for it. ``language`` (ISO 639-1) and ``model_id`` are set by the language
    router (:mod:`nlp.routing`); a single model leaves them None.
    """

    label: Label
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    language: str | None = None
    model_id: str | None = None


@runtime_checkable
class SentimentClassifier(Protocol):
    """Anything that labels texts; implementations batch internally."""

    @property
    def model_id(self) -> str:
        """Where the model came from (a folder, package or hub id)."""
        ...

    @property
    def model_version(self) -> str:
        """A stable identifier of the exact weights, recorded with every stored label."""
        ...

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """Return one prediction per text, in input order."""
        ...
