"""Chat forms become words before tokenisation: emoji, emoticons, shouting and elongation."""

from __future__ import annotations

import pytest

from nlp.chat_text import prepare, without_chat_forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("👍", "thumbs up"),
        ("❤️", "red heart"),
        ("🙂", "slightly smiling face"),
        ("🤷", "person shrugging"),
        ("👎🏽", "thumbs down"),  # skin tone dropped
        ("🤷‍♀️", "woman shrugging"),
        ("great👍", "great thumbs up"),
        ("😡😡😡😡", "enraged face enraged face"),  # a run of one emoji cut to two
        (":)", "smiling face"),
        ("meh :-/", "meh confused face"),
        ("love it:)", "love it smiling face"),
        ("terrible :((", "terrible frowning face"),
        ("<3 <3", "red heart red heart"),
        ("no idea ¯\\_(ツ)_/¯", "no idea person shrugging"),
        ("Thanks!!!!!", "Thanks!!"),
        ("What?!?!", "What?!"),
        ("wait.......", "wait..."),
        ("sooooo gooood", "soo good"),
        ("  spaced\tout  ", "spaced out"),
    ],
)
def test_chat_forms_become_words(text: str, expected: str) -> None:
    assert prepare(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The parcel arrived on 12/03 at 8:30, see https://example.com/a:b (ref: 42).",
        "Note (optional): none",
        "Der Kurier war unfreundlich und zu spät",
        "Good service, thanks.",
    ],
)
def test_plain_text_is_left_alone(text: str) -> None:
    assert prepare(text) == text


def test_emoji_can_stay_for_models_that_know_them() -> None:
    assert prepare("great 👍👍👍 :)", emoji_to_words=False) == "great 👍👍👍 smiling face"


def test_without_chat_forms_keeps_only_the_words() -> None:
    assert without_chat_forms("todo bien 👍 :) gracias") == "todo bien gracias"
