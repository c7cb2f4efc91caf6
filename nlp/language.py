"""Which language a reply is written in, offline, among a configured set of languages.

Detection uses Lingua (``lingua-language-detector``), whose n-gram models ship in its wheel, so
nothing is downloaded. It is restricted to the configured languages: fewer candidates are both
faster and more accurate, and about 35 MB of memory per language is loaded on first use.

Chat replies are often too short to tell a language by: "ok", "no", "👍", "super". The rule
(:meth:`LanguageDetector.detect`):

1. Mentions, hashtags, links, emoji, emoticons, digits and punctuation are set aside; a text
   left with fewer than ``min_words`` words (two by default) is in the default language.
2. Otherwise Lingua's most likely language wins when its confidence is at least
   ``min_confidence`` (0.3) and at least ``min_ratio`` (3) times the default language's
   confidence; anything less certain is in the default language.

So an unsure detection falls back to the default language (English unless configured),
rather than to "unknown": the default model has the best chance with a short reply, and an
English text is never sent away because it looked a little Dutch. The thresholds were set on
the project's own English dev sentences (1 of 3,000 sent away) and hand-written German and
Spanish replies, never on the evaluation sets.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from nlp.chat_text import prepare, without_chat_forms

#: The languages told apart by default: those of the bundled flows and their neighbours.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr", "it", "pt", "nl")
DEFAULT_LANGUAGE = "en"

_NOISE = re.compile(r"@\w+|#\w+|https?://\S+|www\.\S+")
_WORD = re.compile(r"[^\W\d_]{2,}")


def _lingua_language(code: str) -> Any:
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except ValueError as exc:
        raise ValueError(f"unknown language code {code!r} (use ISO 639-1, e.g. 'de')") from exc


def check_language_codes(codes: Sequence[str]) -> None:
    """Raise ValueError naming the first code Lingua does not know (cheap: loads no model)."""
    for code in codes:
        _lingua_language(code)


class LanguageDetector:
    """Detects one of ``languages`` (ISO 639-1 codes) per text; thread-safe, loads lazily."""

    def __init__(
        self,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        *,
        default: str = DEFAULT_LANGUAGE,
        min_words: int = 2,
        min_confidence: float = 0.3,
        min_ratio: float = 3.0,
    ) -> None:
        codes = list(dict.fromkeys([default, *languages]))
        check_language_codes(codes)
        self.languages: tuple[str, ...] = tuple(codes)
        self.default = default
        self.min_words = min_words
        self.min_confidence = min_confidence
        self.min_ratio = min_ratio
        self._detector: Any = None
        self._lock = threading.Lock()

    def _lingua(self) -> Any:
        # Built on first use: building loads every language's models (~35 MB each).
        with self._lock:
            if self._detector is None:
                from lingua import LanguageDetectorBuilder

                languages = [_lingua_language(code) for code in self.languages]
                self._detector = (
                    LanguageDetectorBuilder.from_languages(*languages)
                    .with_preloaded_language_models()
                    .build()
                )
            return self._detector

    @staticmethod
    def words_of(text: str) -> str:
        """The words of ``text`` without mentions, links, emoji, emoticons, digits and
        punctuation (what is detected on); elongated words squeezed ("sooo" → "soo")."""
        return " ".join(_WORD.findall(prepare(without_chat_forms(_NOISE.sub(" ", text)))))

    def detect(self, text: str) -> str:
        """The language code of ``text``; the default language when unsure (module docstring)."""
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[str]:
        """:meth:`detect` for each text, in order."""
        cleaned = [self.words_of(t) for t in texts]
        out = [self.default] * len(texts)
        todo = [i for i, c in enumerate(cleaned) if len(c.split()) >= self.min_words]
        if not todo or len(self.languages) == 1:
            return out
        detector = self._lingua()
        results = detector.compute_language_confidence_values_in_parallel(
            [cleaned[i] for i in todo]
        )
        for i, values in zip(todo, results, strict=True):
            out[i] = self._decide(values)
        return out

    def _decide(self, values: Sequence[Any]) -> str:
        if not values:
            return self.default
        confidence: dict[str, float] = {
            str(v.language.iso_code_639_1.name).lower(): float(v.value) for v in values
        }
        top = max(confidence, key=lambda code: confidence[code])
        if top == self.default:
            return top
        if confidence[top] < self.min_confidence:
            return self.default
        if confidence[top] < self.min_ratio * confidence.get(self.default, 0.0):
            return self.default
        return top
