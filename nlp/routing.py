"""One sentiment model per language: detect each text's language, ask that language's model.

:class:`RoutingClassifier` is a :class:`~nlp.classifier.SentimentClassifier` in front of one
model per configured language (``[sentiment] models``). A text in a language that no configured
model covers gets the label ``unclassified`` with confidence 0.0 and all-zero scores — no
sentiment is guessed — and its detected language. Every prediction names its ``language`` and
the ``model_id`` that labelled it (``"none"`` for ``unclassified``).

With only the default language configured (the default: English → the shipped model) the
router's ``model_id`` and ``model_version`` are that model's own, so labels stored before
routing existed stay current. With more languages the version names every member, so changing
the mapping relabels stored texts (history is kept).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from nlp.classifier import SENTIMENT_LABELS, Label, Prediction, SentimentClassifier
from nlp.language import DEFAULT_LANGUAGE, DEFAULT_LANGUAGES, LanguageDetector

#: ``[sentiment] models`` values that mean the shipped English model.
SHIPPED_NAMES = frozenset({"shipped", "default", ""})
#: ``model_id`` of an ``unclassified`` prediction: no model was asked.
NO_MODEL = "none"
# A label stores at most this much of the version (storage's sentimentscore.model_version).
MAX_VERSION_LENGTH = 64


def unclassified(language: str) -> Prediction:
    """The prediction for a text whose language has no model: nothing guessed."""
    return Prediction(
        Label.UNCLASSIFIED,
        0.0,
        dict.fromkeys(SENTIMENT_LABELS, 0.0),
        language=language,
        model_id=NO_MODEL,
    )


class RoutingClassifier:
    """Detects each text's language and dispatches it to that language's classifier."""

    def __init__(
        self,
        models: Mapping[str, SentimentClassifier],
        detector: LanguageDetector,
    ) -> None:
        if not models:
            raise ValueError("at least one language needs a model")
        missing = sorted(set(models) - set(detector.languages))
        if missing:
            raise ValueError(f"languages {', '.join(missing)} have a model but are not detected")
        self.models = dict(models)
        self.detector = detector

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages with a model, sorted."""
        return tuple(sorted(self.models))

    @property
    def model_id(self) -> str:
        """The one model's id, or ``lang=id`` pairs joined by ``,``."""
        if len(self.models) == 1:
            return next(iter(self.models.values())).model_id
        return ",".join(f"{code}={self.models[code].model_id}" for code in self.languages)

    @property
    def model_version(self) -> str:
        """The one model's version, or ``lang:version`` pairs joined by ``+`` — a hash of them
        when that is longer than the 64 characters stored with a label."""
        if len(self.models) == 1:
            return next(iter(self.models.values())).model_version
        joined = "+".join(f"{code}:{self.models[code].model_version}" for code in self.languages)
        if len(joined) <= MAX_VERSION_LENGTH:
            return joined
        digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]
        return f"{'+'.join(self.languages)}-{digest}"[-MAX_VERSION_LENGTH:]

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """One prediction per text, in input order; each model gets its texts in one call."""
        if isinstance(texts, str):
            raise TypeError("classify() takes a sequence of texts, not a single string")
        languages = self.detector.detect_many(texts)
        out: list[Prediction | None] = [None] * len(texts)
        for code in dict.fromkeys(languages):
            idx = [i for i, lang in enumerate(languages) if lang == code]
            model = self.models.get(code)
            if model is None:
                for i in idx:
                    out[i] = unclassified(code)
                continue
            for i, p in zip(idx, model.classify([texts[i] for i in idx]), strict=True):
                out[i] = Prediction(
                    p.label, p.confidence, p.scores, language=code, model_id=model.model_id
                )
        return [p for p in out if p is not None]


def load_routing_classifier(
    models: Mapping[str, str],
    load_model: Callable[[str | None], SentimentClassifier],
    *,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    default_language: str = DEFAULT_LANGUAGE,
) -> RoutingClassifier:
    """Build the router: ``models`` maps language codes to ``"shipped"`` (or ``"default"``)
    or a model folder / hub id; ``load_model(None)`` must load the shipped model and
    ``load_model(name)`` any other. Languages with a model are always detected, besides
    ``languages``. Each distinct model is loaded once, however many languages share it."""
    detector = LanguageDetector([*languages, *models], default=default_language)
    loaded: dict[str | None, SentimentClassifier] = {}
    members: dict[str, SentimentClassifier] = {}
    for code, name in models.items():
        key = None if name.strip().lower() in SHIPPED_NAMES else name
        if key not in loaded:
            loaded[key] = load_model(key)
        members[code] = loaded[key]
    return RoutingClassifier(members, detector)
