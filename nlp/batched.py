"""What the torch and ONNX Runtime classifiers share: identity, text preparation, length-sorted
batches under one lock, and probabilities → :class:`~nlp.classifier.Prediction`.

Kept free of torch and numpy imports: the ONNX path must not import torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from nlp.classifier import SENTIMENT_LABELS, Label, Prediction


class BatchedClassifier:
    """A model behind :meth:`_probabilities`; :meth:`classify` takes any number of texts.

    Subclasses turn one batch of prepared texts into one probability row per text, in the
    model's label order (``index_to_label``), the temperature applied.
    """

    def __init__(
        self,
        *,
        index_to_label: Sequence[str],
        model_id: str,
        model_version: str,
        batch_size: int,
        max_length: int,
        source: str,
        prepare: Callable[[str], str] | None,
        temperature: float,
    ) -> None:
        self._index_to_label = list(index_to_label)
        self._model_id = model_id
        self._model_version = model_version
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        #: Human-readable description of the files the model was loaded from.
        self.source = source or model_id
        #: Applied to every text before tokenisation (chat forms → words); None = raw text.
        self.prepare = prepare
        #: Logits are divided by it before softmax (``meta.json`` ``temperature``; see
        #: nlp.calibration): calibrated confidences, same labels.
        self.temperature = temperature if temperature > 0 else 1.0
        # One classify() at a time: each already uses every configured core.
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Where the model came from."""
        return self._model_id

    @property
    def model_version(self) -> str:
        """Identifier of the exact weights (content hash based; the same on either backend)."""
        return self._model_version

    @property
    def has_neutral(self) -> bool:
        """Whether the model can predict neutral at all."""
        return "neutral" in self._index_to_label

    def _probabilities(self, texts: list[str]) -> list[list[float]]:
        """One probability row per prepared text of one batch."""
        raise NotImplementedError

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify ``texts`` in batches of similar length; output keeps the input order."""
        if isinstance(texts, str):
            raise TypeError("classify() takes a sequence of texts, not a single string")
        prepared = [self.prepare(t) for t in texts] if self.prepare else list(texts)
        results: list[Prediction | None] = [None] * len(prepared)
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(prepared)), key=lambda i: len(prepared[i]))
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        with self._lock:
            found = self._batch_probabilities([[prepared[i] for i in idx] for idx in batches])
        for idx, rows in zip(batches, found, strict=True):
            for i, row in zip(idx, rows, strict=True):
                results[i] = self._prediction(row)
        return [r for r in results if r is not None]

    def _batch_probabilities(self, batches: list[list[str]]) -> list[list[list[float]]]:
        """The rows of every batch, in order; one batch after another unless overridden."""
        return [self._probabilities(batch) for batch in batches]

    def _prediction(self, row: Sequence[float]) -> Prediction:
        scores = dict.fromkeys(SENTIMENT_LABELS, 0.0)
        for name, p in zip(self._index_to_label, row, strict=True):
            scores[name] += p
        label = max(SENTIMENT_LABELS, key=lambda name: scores[name])
        return Prediction(Label(label), scores[label], scores)
