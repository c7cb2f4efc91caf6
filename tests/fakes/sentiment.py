"""A stand-in sentiment classifier for worker tests: labels by keywords, records its calls."""

from __future__ import annotations

from collections.abc import Sequence

from nlp.classifier import SENTIMENT_LABELS, Label, Prediction


class KeywordClassifier:
    """Negative for 'awful', 'crash' or 'disaster'; positive for 'great'; else neutral."""

    model_id = "tests/keyword-classifier"

    def __init__(self, version: str = "kw-1") -> None:
        self.model_version = version
        self.batches: list[list[str]] = []

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        self.batches.append(list(texts))
        return [self._one(t.lower()) for t in texts]

    @staticmethod
    def _one(text: str) -> Prediction:
        if any(w in text for w in ("awful", "crash", "disaster")):
            label, conf = Label.NEGATIVE, 0.95
        elif "great" in text:
            label, conf = Label.POSITIVE, 0.9
        else:
            label, conf = Label.NEUTRAL, 0.8
        rest = (1 - conf) / 2
        scores = {name: (conf if name == label else rest) for name in SENTIMENT_LABELS}
        return Prediction(label=label, confidence=conf, scores=scores)
