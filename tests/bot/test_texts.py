"""The bot's own words: every language has every text, and German is there."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.texts import TEXTS, bot_text, has_bot_texts


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_every_language_has_every_text_with_the_same_fields(language: str) -> None:
    assert set(TEXTS[language]) == set(TEXTS["en"])
    for key, text in TEXTS[language].items():
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        english = {f for _, f, _, _ in string.Formatter().parse(TEXTS["en"][key]) if f}
        assert fields == english, key


def test_german_buttons_and_thanks() -> None:
    assert [bot_text(k, "de-AT") for k in ("yes", "no")] == ["Ja", "Nein"]
    assert bot_text("thanks", "de") == "Vielen Dank für Ihr Feedback!"
    assert has_bot_texts("de") and not has_bot_texts("fr")
    assert bot_text("yes", "fr") == "Yes"  # a language without texts falls back to English


async def test_the_german_flow_shows_german_buttons(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_SENTIMENT__ENABLED": "false",
        },
    )
    app = build_app(settings)
    try:
        opening = await app.engine.begin(
            channel="console", user_id="ute", flow_id="post_purchase", locale="de"
        )
    finally:
        app.close()
    buttons = [c.label for m in opening for c in m.choices]
    assert buttons == ["Ja", "Nein"], opening
