"""The language router: one model per language, `unclassified` where no model is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.classifier import SENTIMENT_LABELS, Label, SentimentClassifier
from nlp.language import LanguageDetector
from nlp.routing import NO_MODEL, RoutingClassifier, load_routing_classifier
from nlp.transformer import load_classifier, preparation_for
from tests.fakes.sentiment import KeywordClassifier
from tests.fakes.tiny_model import tiny_bert

GERMAN = "Der Kurier war unfreundlich und zu spät"
SPANISH = "el servicio fue pésimo, nunca más"
ENGLISH = "The courier was awful and late"


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(["en", "es", "de"])


@pytest.fixture(scope="module")
def german_model(tmp_path_factory: pytest.TempPathFactory) -> SentimentClassifier:
    folder = tmp_path_factory.mktemp("models") / "german"
    words = ["der", "kurier", "war", "unfreundlich", "und", "zu", "spät"]
    return load_classifier(str(tiny_bert(folder, words, always="negative")))


def test_each_text_goes_to_its_languages_model_and_others_are_unclassified(
    detector: LanguageDetector, german_model: SentimentClassifier
) -> None:
    english = KeywordClassifier()
    router = RoutingClassifier({"en": english, "de": german_model}, detector)
    de, es, en, thumbs = router.classify([GERMAN, SPANISH, ENGLISH, "👍"])

    assert (de.label, de.language, de.model_id) == (Label.NEGATIVE, "de", german_model.model_id)
    assert de.confidence > 0.9
    # Spanish has no model: nothing guessed.
    assert (es.label, es.confidence, es.language, es.model_id) == (
        Label.UNCLASSIFIED,
        0.0,
        "es",
        NO_MODEL,
    )
    assert es.scores == dict.fromkeys(SENTIMENT_LABELS, 0.0)
    assert (en.label, en.language, en.model_id) == (Label.NEGATIVE, "en", english.model_id)
    # Emoji-only replies count as the default language.
    assert thumbs.language == "en"
    # Each model saw only its own texts, in one batch.
    assert english.batches == [[ENGLISH, "👍"]]


def test_with_one_model_the_router_is_that_model(detector: LanguageDetector) -> None:
    english = KeywordClassifier("kw-7")
    router = RoutingClassifier({"en": english}, detector)
    # Labels stored before routing existed stay current: same id and version.
    assert (router.model_id, router.model_version) == (english.model_id, "kw-7")
    assert [p.label for p in router.classify([SPANISH])] == [Label.UNCLASSIFIED]


def test_the_version_names_every_member_within_64_characters(
    detector: LanguageDetector,
) -> None:
    short = RoutingClassifier(
        {"en": KeywordClassifier("a"), "de": KeywordClassifier("b")}, detector
    )
    assert short.model_version == "de:b+en:a"
    long = RoutingClassifier(
        {"en": KeywordClassifier("x" * 40), "de": KeywordClassifier("y" * 40)}, detector
    )
    assert len(long.model_version) <= 64 and long.model_version.startswith("de+en-")
    other = RoutingClassifier(
        {"en": KeywordClassifier("x" * 40), "de": KeywordClassifier("z" * 40)}, detector
    )
    assert other.model_version != long.model_version


def test_loading_shares_one_model_between_languages_and_adds_their_detection() -> None:
    loaded: list[str | None] = []

    def load(name: str | None) -> SentimentClassifier:
        loaded.append(name)
        return KeywordClassifier(str(name))

    router = load_routing_classifier(
        {"en": "shipped", "de": "/models/de", "nl": "/models/de"}, load, languages=["en"]
    )
    assert loaded == [None, "/models/de"]
    assert router.languages == ("de", "en", "nl")
    assert set(router.detector.languages) == {"en", "de", "nl"}


def test_a_model_for_a_language_that_is_not_detected_is_refused(
    detector: LanguageDetector,
) -> None:
    with pytest.raises(ValueError, match="fr"):
        RoutingClassifier({"fr": KeywordClassifier()}, detector)


def test_configured_model_keeps_emoji_its_tokenizer_knows(tmp_path: Path) -> None:
    plain = load_classifier(str(tiny_bert(tmp_path / "words", ["thumbs", "up", "good"])))
    # No emoji in the vocabulary: 👍 is read as the words "thumbs up".
    assert plain.classify(["👍"])[0].scores == pytest.approx(
        plain.classify(["thumbs up"])[0].scores
    )


class _Tokenizer:
    """Stands in for a tokenizer with (or without) tokens for emoji."""

    unk_token_id = 1

    def __init__(self, knows_emoji: bool) -> None:
        self.knows_emoji = knows_emoji

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [7, 8] if self.knows_emoji else [1, 1]}


def test_emoji_stay_emoji_for_a_tokenizer_that_has_them() -> None:
    assert preparation_for(_Tokenizer(knows_emoji=True))("great 👍!!!!") == "great 👍!!"
    assert preparation_for(_Tokenizer(knows_emoji=False))("great 👍!!!!") == "great thumbs up !!"
