"""Tests for bot.parsing: typed answers, button payloads and built-in words."""

from __future__ import annotations

from typing import Any

import pytest

from bot.flow_model import Question
from bot.parsing import (
    PAYLOAD_MAX_BYTES,
    Command,
    Confirm,
    Invalid,
    InvalidReason,
    Parsed,
    ParseResult,
    decode_payload,
    detect_command,
    encode_payload,
    parse_answer,
    parse_payload,
    parse_yes_no,
)

R = InvalidReason


def question(qid: str, qtype: str, **extra: Any) -> Question:
    return Question.model_validate({"id": qid, "type": qtype, "text": "?", **extra})


NPS = question("nps", "nps")
CES = question("ces", "ces")
CES_5 = question("ces5", "ces", scale={"min": 1, "max": 5})
CSAT = question("csat", "csat")
TEXT = question("comment", "text", max_length=20)
YES_NO = question("solved", "yes_no")
CHOICE = question(
    "reason",
    "choice",
    choices=[
        {"id": "price", "label": {"en": "💰 Price", "es": "Precio"}},
        {"id": "privacy", "label": {"en": "Privacy", "es": "Privacidad"}},
        {"id": "support", "label": {"en": "Customer support", "es": "Atención al cliente"}},
        {"id": "speed", "label": "Speed!"},
    ],
)
EMOJI_CHOICE = question(
    "mood", "choice", choices=[{"id": "happy", "label": "🙂"}, {"id": "sad", "label": "🙁"}]
)
SAME_LABEL = question(
    "dup", "choice", choices=[{"id": "a", "label": "Other"}, {"id": "b", "label": "other"}]
)

ALL_QUESTIONS = [NPS, CES, CSAT, TEXT, YES_NO, CHOICE]


def ok(value: int | str | bool) -> ParseResult:
    return Parsed(value)


def bad(reason: InvalidReason) -> ParseResult:
    return Invalid(reason)


# --- Empty input, every type --------------------------------------------------------------------


@pytest.mark.parametrize("q", ALL_QUESTIONS, ids=lambda q: q.type)
@pytest.mark.parametrize("text", ["", " ", "\t\n ", "\u200b", " \u200b "])
def test_blank_is_empty_for_every_type(q: Question, text: str) -> None:
    assert parse_answer(q, text) == bad(R.EMPTY)


# --- Scores -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8", 8),
        (" 9 !", 9),
        ("0", 0),
        ("10", 10),
        ("10!!!", 10),
        ("8/10", 8),
        ("8 / 10", 8),
        ("10/10", 10),
        ("8 out of 10", 8),
        ("8 Out Of 10", 8),
        ("8 of 10", 8),
        ("8 de 10", 8),
        ("8 sobre 10", 8),
        ("eight out of ten", 8),
        ("ocho de diez", 8),
        ("eight", 8),
        ("Eight!", 8),
        ("EIGHT", 8),
        ("ten", 10),
        ("zero", 0),
        ("one", 1),
        ("ocho", 8),
        ("diez", 10),
        ("cero", 0),
        ("nueve", 9),
        ("9️⃣", 9),
        ("9\u20e3", 9),
        ("0️⃣", 0),
        ("🔟", 10),
        ("1️⃣0️⃣", 10),
        ("８", 8),
        ("１０", 10),
        ("10/10, a 10!", 10),
        ("8 (eight)", 8),
    ],
)
def test_nps_accepts(text: str, expected: int) -> None:
    assert parse_answer(NPS, text) == ok(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Issue 12: a number with other words around it may not be a rating at all.
        ("the courier was 2 hours late", 2),
        ("flood 0 yyy", 0),
        ("I'd say 8", 8),
        ("I’d say 8", 8),
        ("Probably a 7, thanks", 7),
        ("once they fixed it, 9", 9),
        ("everyone was nice: 9", 9),
        ("nueve, muy bien", 9),
    ],
)
def test_nps_numbers_in_sentences_need_a_confirmation(text: str, expected: int) -> None:
    assert parse_answer(NPS, text) == Confirm(expected)


def test_sentences_with_a_number_off_the_scale_are_still_out_of_range() -> None:
    assert parse_answer(NPS, "waited 45 minutes") == bad(R.OUT_OF_RANGE)
    assert parse_answer(CSAT, "two hours late, 9 calls") == bad(R.AMBIGUOUS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("Sí", True), ("y", True), ("no", False), ("nope", False), ("8", None)],
)
def test_typed_confirmations(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("11", R.OUT_OF_RANGE),
        ("eleven", R.OUT_OF_RANGE),
        ("doce", R.OUT_OF_RANGE),
        ("-1", R.OUT_OF_RANGE),
        ("\u22121", R.OUT_OF_RANGE),  # U+2212 MINUS SIGN
        ("100", R.OUT_OF_RANGE),
        ("11/10", R.OUT_OF_RANGE),
        # A denominator other than the scale's maximum is another scale: never converted.
        ("4/5", R.AMBIGUOUS),
        ("4 out of 5", R.AMBIGUOUS),
        ("8/100", R.AMBIGUOUS),
        ("7 or 8", R.AMBIGUOUS),
        ("between 6 and 7", R.AMBIGUOUS),
        ("6-7", R.AMBIGUOUS),
        ("7, 8", R.AMBIGUOUS),
        ("8 eight nine", R.AMBIGUOUS),
        ("7.5", R.AMBIGUOUS),
        ("7,5", R.AMBIGUOUS),
        ("8.0", R.AMBIGUOUS),
        ("8.5/10", R.AMBIGUOUS),
        ("hello", R.NOT_A_NUMBER),
        ("great service!", R.NOT_A_NUMBER),
        ("una maravilla", R.NOT_A_NUMBER),
        ("!!!", R.NOT_A_NUMBER),
        ("👍", R.NOT_A_NUMBER),
        # Stars count from 1; NPS starts at 0, so stars are not a score there.
        ("****", R.NOT_A_NUMBER),
        ("★★★★☆", R.NOT_A_NUMBER),
    ],
)
def test_nps_rejects(text: str, reason: InvalidReason) -> None:
    assert parse_answer(NPS, text) == bad(reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("★★★★☆", 4),
        ("★★★★★", 5),
        ("★☆☆☆☆", 1),
        ("⭐⭐⭐⭐", 4),
        ("⭐️⭐️⭐️", 3),  # with U+FE0F after each star
        ("🌟🌟", 2),
        ("****", 4),
        ("* * *", 3),
        ("＊＊", 2),  # full-width asterisks
        ("★★★!", 3),
        ("3/5", 3),
        ("3 out of 5", 3),
        ("5/5", 5),
        ("4 stars", 4),
        ("4 ⭐", 4),
        ("four", 4),
        ("cinco", 5),
        ("1", 1),
    ],
)
def test_csat_accepts(text: str, expected: int) -> None:
    assert parse_answer(CSAT, text) == ok(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", R.OUT_OF_RANGE),
        ("6", R.OUT_OF_RANGE),
        ("zero", R.OUT_OF_RANGE),
        ("☆☆☆☆☆", R.OUT_OF_RANGE),  # zero filled stars
        ("******", R.OUT_OF_RANGE),
        ("8/10", R.AMBIGUOUS),
        ("3/7", R.AMBIGUOUS),
        ("3 or 4", R.AMBIGUOUS),
        ("3.5", R.AMBIGUOUS),
        ("good", R.NOT_A_NUMBER),
        ("8*", R.OUT_OF_RANGE),  # a number with a star after it is a number, not stars
    ],
)
def test_csat_rejects(text: str, reason: InvalidReason) -> None:
    assert parse_answer(CSAT, text) == bad(reason)


@pytest.mark.parametrize(
    ("q", "text", "expected"),
    [
        (CES, "7", ok(7)),
        (CES, "1", ok(1)),
        (CES, "5/7", ok(5)),
        (CES, "siete", ok(7)),
        (CES, "★★★★★★★", bad(R.NOT_A_NUMBER)),  # stars are for CSAT only
        (CES, "0", bad(R.OUT_OF_RANGE)),
        (CES, "8", bad(R.OUT_OF_RANGE)),
        (CES, "5/5", bad(R.AMBIGUOUS)),
        (CES_5, "5/5", ok(5)),
        (CES_5, "5/7", bad(R.AMBIGUOUS)),
        (CES_5, "6", bad(R.OUT_OF_RANGE)),
        (CES_5, "★★", bad(R.NOT_A_NUMBER)),
    ],
)
def test_ces_uses_its_scale(q: Question, text: str, expected: ParseResult) -> None:
    assert parse_answer(q, text) == expected


@pytest.mark.parametrize("q", [NPS, CSAT, CHOICE], ids=lambda q: q.type)
def test_a_wall_of_digits_is_out_of_range_not_a_crash(q: Question) -> None:
    assert parse_answer(q, "9" * 5000) == bad(R.OUT_OF_RANGE)
    assert parse_answer(q, "-" + "9" * 5000) == bad(R.OUT_OF_RANGE)


def test_stars_need_a_scale_starting_at_one_and_at_most_ten_points() -> None:
    long_scale = question("long", "ces", scale={"min": 1, "max": 11})
    assert parse_answer(long_scale, "***") == bad(R.NOT_A_NUMBER)
    assert parse_answer(long_scale, "3") == ok(3)


# --- Yes / no -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "Yes!",
        "YES",
        "y",
        "Y.",
        "yeah",
        "yep",
        "sure",
        "ok",
        "OK!",
        "okay",
        "of course",
        "Of course!",
        "true",
        "👍",
        "👍🏽",
        "✅",
        "✔️",
        "✔",
        "sí",
        "Sí.",
        "si",
        "ja",
        "yes please",
        "yes, thanks a lot",
    ],
)
def test_yes(text: str) -> None:
    assert parse_answer(YES_NO, text) == ok(True)


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "No.",
        "NO!",
        "n",
        "nope",
        "nah",
        "not really",
        "Not really...",
        "false",
        "👎",
        "❌",
        "nein",
        "no, not at all",
        "no thanks",
        "y la verdad no",  # Spanish "y" ("and") inside a sentence is not a yes
    ],
)
def test_no(text: str) -> None:
    assert parse_answer(YES_NO, text) == ok(False)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("yes and no", R.AMBIGUOUS),
        ("yes no", R.AMBIGUOUS),
        ("👍👎", R.AMBIGUOUS),
        ("of course not", R.AMBIGUOUS),
        ("sure not", R.AMBIGUOUS),
        ("yes, maybe", R.AMBIGUOUS),
        ("no sé, quizás", R.NOT_YES_NO),
        ("no, I dunno", R.AMBIGUOUS),
        ("maybe", R.NOT_YES_NO),
        ("not sure", R.NOT_YES_NO),
        ("No sé", R.NOT_YES_NO),
        ("I don't know", R.NOT_YES_NO),
        ("not bad", R.NOT_YES_NO),
        ("whatever", R.NOT_YES_NO),
        ("yesterday", R.NOT_YES_NO),
        ("know", R.NOT_YES_NO),
        ("8", R.NOT_YES_NO),
    ],
)
def test_yes_no_rejects(text: str, reason: InvalidReason) -> None:
    assert parse_answer(YES_NO, text) == bad(reason)


# --- Choices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "price"),
        ("2", "privacy"),
        ("4", "speed"),
        (" 3. ", "support"),
        ("#2", "privacy"),
        ("2️⃣", "privacy"),
        ("２", "privacy"),
        ("price", "price"),
        ("PRIVACY", "privacy"),
        ("support", "support"),
        ("Price", "price"),
        ("💰 Price", "price"),
        ("price!", "price"),
        ("Precio", "price"),
        ("precio", "price"),
        ("Privacidad", "privacy"),
        ("atencion al cliente", "support"),
        ("ATENCIÓN AL CLIENTE.", "support"),
        ("customer   support", "support"),
        ("Speed", "speed"),
        ("speed!!", "speed"),
        ("Priv", "privacy"),
        ("Prec", "price"),
        ("cust", "support"),
        ("Customer sup", "support"),
        ("ate", "support"),
        ("spe", "speed"),
    ],
)
def test_choice_accepts(text: str, expected: str) -> None:
    assert parse_answer(CHOICE, text) == ok(expected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", R.OUT_OF_RANGE),
        ("5", R.OUT_OF_RANGE),
        ("42", R.OUT_OF_RANGE),
        ("pri", R.AMBIGUOUS),  # Price, Privacy, Privacidad
        ("pr", R.UNKNOWN_CHOICE),  # too short to be a prefix
        ("sp", R.UNKNOWN_CHOICE),
        ("support team", R.UNKNOWN_CHOICE),
        ("quality", R.UNKNOWN_CHOICE),
        ("expensive", R.UNKNOWN_CHOICE),
        ("!!", R.UNKNOWN_CHOICE),
    ],
)
def test_choice_rejects(text: str, reason: InvalidReason) -> None:
    assert parse_answer(CHOICE, text) == bad(reason)


def test_choice_labels_made_of_symbols_match_exactly() -> None:
    assert parse_answer(EMOJI_CHOICE, "🙂") == ok("happy")
    assert parse_answer(EMOJI_CHOICE, " 🙁 ") == ok("sad")
    assert parse_answer(EMOJI_CHOICE, "🙃") == bad(R.UNKNOWN_CHOICE)


def test_two_choices_with_the_same_label_are_ambiguous() -> None:
    assert parse_answer(SAME_LABEL, "other") == bad(R.AMBIGUOUS)
    assert parse_answer(SAME_LABEL, "b") == ok("b")  # the id still picks one


def test_a_label_that_is_a_number_wins_over_the_position() -> None:
    q = question(
        "size", "choice", choices=[{"id": "small", "label": "10"}, {"id": "big", "label": "1"}]
    )
    assert parse_answer(q, "1") == ok("big")
    assert parse_answer(q, "2") == ok("big")


# --- Text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Great service!  ", "Great service!"),
        ("8", "8"),
        ("skip this", "skip this"),
        ("line one\nline two", "line one\nline two"),
        ("x" * 100, "x" * 100),  # longer than max_length: truncating is the engine's job
        ("Ça va ★", "Ça va ★"),  # stored as typed, not folded
    ],
)
def test_text_is_stripped_only(text: str, expected: str) -> None:
    assert parse_answer(TEXT, text) == ok(expected)


# --- Payloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qid", "value", "payload"),
    [
        ("nps", 8, "a:nps:8"),
        ("nps", 0, "a:nps:0"),
        ("nps", 10, "a:nps:10"),
        ("solved", True, "a:solved:yes"),
        ("solved", False, "a:solved:no"),
        ("reason", "price", "a:reason:price"),
        ("scaled", -2, "a:scaled:-2"),
    ],
)
def test_payload_round_trip(qid: str, value: int | str | bool, payload: str) -> None:
    assert encode_payload(qid, value) == payload
    raw = "yes" if value is True else "no" if value is False else str(value)
    assert decode_payload(payload) == (qid, raw)


def test_payload_at_the_limit_is_allowed() -> None:
    qid = "q" * (PAYLOAD_MAX_BYTES - len("a::10"))
    payload = encode_payload(qid, 10)
    assert len(payload.encode()) == PAYLOAD_MAX_BYTES == 64
    assert decode_payload(payload) == (qid, "10")


def test_payload_over_the_limit_raises() -> None:
    qid = "q" * (PAYLOAD_MAX_BYTES - len("a::10") + 1)
    with pytest.raises(ValueError, match="64 bytes"):
        encode_payload(qid, 10)
    assert decode_payload(f"a:{qid}:10") is None


@pytest.mark.parametrize(
    ("qid", "value"),
    [("bad:id", 1), ("", 1), ("nps", ""), ("nps", "Price"), ("nps", "two words"), ("Nps", 1)],
)
def test_payload_that_would_not_decode_raises(qid: str, value: int | str | bool) -> None:
    with pytest.raises(ValueError):
        encode_payload(qid, value)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "a:",
        "a:nps",
        "a:nps:",
        "a::8",
        "b:nps:8",
        "nps:8",
        "a:nps:8:9",
        "a:NPS:8",
        "a:nps:8 ",
        " a:nps:8",
        "a:nps:８",
        "a:9nps:8",
        "a:nps:--8",
        "a:nps:ä",
        "a:" + "q" * 70 + ":8",
    ],
)
def test_malformed_payloads_do_not_decode(payload: str) -> None:
    assert decode_payload(payload) is None


@pytest.mark.parametrize(
    ("q", "payload", "expected"),
    [
        (NPS, "a:nps:0", ok(0)),
        (NPS, "a:nps:10", ok(10)),
        (CSAT, "a:csat:5", ok(5)),
        (CES, "a:ces:7", ok(7)),
        (YES_NO, "a:solved:yes", ok(True)),
        (YES_NO, "a:solved:no", ok(False)),
        (CHOICE, "a:reason:support", ok("support")),
        # Forged or outdated values are checked against the question.
        (NPS, "a:nps:99", bad(R.OUT_OF_RANGE)),
        (NPS, "a:nps:11", bad(R.OUT_OF_RANGE)),
        (NPS, "a:nps:-1", bad(R.OUT_OF_RANGE)),
        (CSAT, "a:csat:0", bad(R.OUT_OF_RANGE)),
        (NPS, "a:nps:eight", bad(R.NOT_A_NUMBER)),
        (NPS, "a:nps:yes", bad(R.STALE_BUTTON)),  # a closed "Did you mean N?" button
        (YES_NO, "a:solved:true", bad(R.NOT_YES_NO)),
        (YES_NO, "a:solved:1", bad(R.NOT_YES_NO)),
        (CHOICE, "a:reason:quality", bad(R.UNKNOWN_CHOICE)),
        (CHOICE, "a:reason:1", bad(R.UNKNOWN_CHOICE)),  # positions are for typing only
        # Another question's button, or not one of our payloads at all.
        (NPS, "a:csat:3", bad(R.STALE_BUTTON)),
        (CHOICE, "a:nps:8", bad(R.STALE_BUTTON)),
        (NPS, "garbage", bad(R.STALE_BUTTON)),
        (NPS, "", bad(R.STALE_BUTTON)),
        (NPS, "a:nps:8:extra", bad(R.STALE_BUTTON)),
        (TEXT, "a:comment:hello", bad(R.STALE_BUTTON)),  # text questions have no buttons
    ],
)
def test_parse_payload(q: Question, payload: str, expected: ParseResult) -> None:
    assert parse_payload(q, payload) == expected


@pytest.mark.parametrize(
    ("q", "value"),
    [(NPS, 0), (NPS, 10), (CSAT, 3), (YES_NO, True), (YES_NO, False), (CHOICE, "speed")],
)
def test_encoded_buttons_parse_back(q: Question, value: int | str | bool) -> None:
    assert parse_payload(q, encode_payload(q.id, value)) == ok(value)


# --- Built-in words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("skip", Command.SKIP),
        ("Skip!", Command.SKIP),
        ("/skip", Command.SKIP),
        (" SKIP ", Command.SKIP),
        ("pass", Command.SKIP),
        ("next", Command.SKIP),
        ("Next.", Command.SKIP),
        ("saltar", Command.SKIP),
        ("stop", Command.STOP),
        ("STOP!!!", Command.STOP),
        ("/stop", Command.STOP),
        ("unsubscribe", Command.STOP),
        ("opt out", Command.STOP),
        ("opt-out", Command.STOP),
        ("Opt-Out.", Command.STOP),
        ("optout", Command.STOP),
        ("cancelar suscripción", Command.STOP),
        ("Cancelar suscripcion", Command.STOP),
        ("baja", Command.STOP),
        ("help", Command.HELP),
        ("Help?", Command.HELP),
        ("/help", Command.HELP),
        ("?", Command.HELP),
        ("??", Command.HELP),
        ("¿?", Command.HELP),
        ("ayuda", Command.HELP),
        ("¿Ayuda?", Command.HELP),
        ("start", Command.START),
        ("/start", Command.START),
        ("/start@CxFeedbackBot", Command.START),
        ("empezar", Command.START),
    ],
)
def test_detect_command(text: str, expected: Command) -> None:
    assert detect_command(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!",
        "...",
        "8",
        "yes",
        "no",
        "stop it",
        "please don't stop improving",
        "skip this question please",
        "help me with my order",
        "stopped",
        "helpful",
        "/stopp",
        "what?",
    ],
)
def test_not_a_command(text: str) -> None:
    assert detect_command(text) is None


@pytest.mark.parametrize(
    ("q", "text", "expected"),
    [(NPS, "I'd say 8 out of 10", 8), (NPS, "honestly 9/10", 9), (CSAT, "cinco estrellas", 5)],
)
def test_a_score_with_its_scale_or_unit_needs_no_confirmation(
    q: Question, text: str, expected: int
) -> None:
    assert parse_answer(q, text) == ok(expected)
