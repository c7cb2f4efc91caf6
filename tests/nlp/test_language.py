"""Language detection: restricted to configured languages, unsure texts in the default one."""

from __future__ import annotations

import pytest

from nlp.language import LanguageDetector


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Der Kurier war unfreundlich und zu spät", "de"),
        ("Die App stürzt ständig ab 😡", "de"),
        ("el servicio fue pésimo, nunca más", "es"),
        ("El pedido llegó tarde y nadie me avisó", "es"),
        ("merci beaucoup, très bien", "fr"),
        ("The courier was rude and late", "en"),
        ("@support still waiting for my refund #fail", "en"),
    ],
)
def test_sentences_get_their_language(detector: LanguageDetector, text: str, language: str) -> None:
    assert detector.detect(text) == language


@pytest.mark.parametrize(
    "text", ["👍", "😡😡😡", "ok", "no", "gracias", "super", ":)", "", "10/10"]
)
def test_short_and_emoji_only_texts_are_in_the_default_language(
    detector: LanguageDetector, text: str
) -> None:
    assert detector.detect(text) == "en"


def test_detect_many_keeps_the_order(detector: LanguageDetector) -> None:
    texts = ["sehr guter Service, alles pünktlich", "👍", "todo perfecto, muchas gracias"]
    assert detector.detect_many(texts) == ["de", "en", "es"]


def test_another_default_language() -> None:
    assert LanguageDetector(["en", "de"], default="de").detect("👍") == "de"


def test_unknown_language_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="'xx'"):
        LanguageDetector(["en", "xx"])


def test_one_language_needs_no_detector() -> None:
    only = LanguageDetector([], default="en")
    assert only.languages == ("en",)
    assert only.detect_many(["Der Kurier war unfreundlich und zu spät"]) == ["en"]
