"""Property tests for `bot.parsing` (issue 12): whatever is typed or pressed, parsing never
raises and never accepts a score outside the question's scale."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.flow_model import SCORE_TYPES, Question
from bot.parsing import Confirm, Invalid, Parsed, parse_answer, parse_payload, parse_yes_no

QUESTIONS = [
    Question.model_validate({"id": "nps", "type": "nps", "text": "?"}),
    Question.model_validate({"id": "ces", "type": "ces", "text": "?"}),
    Question.model_validate(
        {"id": "ces5", "type": "ces", "text": "?", "scale": {"min": 1, "max": 5}}
    ),
    Question.model_validate({"id": "csat", "type": "csat", "text": "?"}),
    Question.model_validate({"id": "solved", "type": "yes_no", "text": "?"}),
    Question.model_validate({"id": "note", "type": "text", "text": "?"}),
    Question.model_validate(
        {
            "id": "reason",
            "type": "choice",
            "text": "?",
            "choices": [{"id": "price", "label": "Price"}, {"id": "speed", "label": "Speed"}],
        }
    ),
]

# Free text, and text built from the pieces parsing looks for (digits, number words, scales,
# stars, keycaps, yes/no) so that the interesting paths are reached often.
PIECES = st.sampled_from(
    ["0", "2", "7", "10", "11", "-1", "99999999999", "eight", "diez", "/", "/10", " out of ",
     " de ", "★", "☆", "*", "⭐", "9\ufe0f\u20e3", "\U0001f51f", "yes", "no", "not", "the",
     "courier", "hours", "late", ".", ",5", " ", "\u0000", "\u200b", "\u2212", "!", "?"]
)  # fmt: skip
TEXTS = st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=8).map("".join))


def _within_scale(question: Question, value: object) -> bool:
    if question.type not in SCORE_TYPES:
        return True
    low, high = question.bounds
    return isinstance(value, int) and low <= value <= high


@settings(max_examples=300, deadline=None)
@given(question=st.sampled_from(QUESTIONS), text=TEXTS)
def test_parse_answer_never_raises_nor_accepts_out_of_range(question: Question, text: str) -> None:
    result = parse_answer(question, text)
    assert isinstance(result, Parsed | Invalid | Confirm)
    if isinstance(result, Parsed | Confirm):
        assert _within_scale(question, result.value)
    if isinstance(result, Confirm):
        assert question.type in SCORE_TYPES  # only scores are ever confirmed


@settings(max_examples=200, deadline=None)
@given(question=st.sampled_from(QUESTIONS), payload=TEXTS)
def test_parse_payload_never_raises_nor_accepts_out_of_range(
    question: Question, payload: str
) -> None:
    result = parse_payload(question, "a:" + question.id + ":" + payload)
    assert isinstance(result, Parsed | Invalid)
    if isinstance(result, Parsed):
        assert _within_scale(question, result.value)
    assert isinstance(parse_payload(question, payload), Parsed | Invalid)


@settings(max_examples=100, deadline=None)
@given(text=TEXTS)
def test_parse_yes_no_never_raises(text: str) -> None:
    assert parse_yes_no(text) in (True, False, None)
