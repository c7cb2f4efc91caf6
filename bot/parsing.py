"""Turn what a customer typed, or the button they pressed, into an answer value.

Typed answers are read generously (number words, keycap emoji, stars, "8/10", labels in any
locale), but a reply that could mean more than one thing is never guessed at: it comes back as
`Invalid` with a reason the engine can turn into a re-ask. Button payloads are read strictly,
since we wrote them ourselves; anything unexpected there is stale or forged.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from bot.flow_model import SCORE_TYPES, Question, QuestionType

__all__ = [
    "PAYLOAD_MAX_BYTES",
    "Command",
    "Confirm",
    "Invalid",
    "InvalidReason",
    "ParseResult",
    "Parsed",
    "decode_payload",
    "detect_command",
    "encode_payload",
    "parse_answer",
    "parse_payload",
    "parse_yes_no",
]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid answer: int for scores, choice id for choice, bool for yes_no, the text for text."""

    value: int | str | bool


class InvalidReason(StrEnum):
    """Why an answer was not accepted; the engine picks its re-ask message from this."""

    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    OUT_OF_RANGE = "out_of_range"
    AMBIGUOUS = "ambiguous"
    UNKNOWN_CHOICE = "unknown_choice"
    NOT_YES_NO = "not_yes_no"
    STALE_BUTTON = "stale_button"


@dataclass(frozen=True, slots=True)
class Invalid:
    """An answer that was not accepted, and why."""

    reason: InvalidReason


@dataclass(frozen=True, slots=True)
class Confirm:
    """A score read from a sentence ("the courier was 2 hours late"): within the scale, but the
    number may not be a rating at all, so it is stored only after the customer says yes."""

    value: int


ParseResult = Parsed | Invalid | Confirm


class Command(StrEnum):
    """Built-in words a customer can send instead of an answer."""

    SKIP = "skip"
    STOP = "stop"
    HELP = "help"
    START = "start"


# --- Normalisation ------------------------------------------------------------------------------

_KEYCAP = re.compile("([0-9])\ufe0f?\u20e3")  # "9️⃣" / "9⃣"
_KEYCAP_TEN = "\U0001f51f"  # 🔟
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_WHITESPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    """Reduce text to a form for matching only (never stored).

    Keycaps become plain digits first, because their combining marks would otherwise be stripped
    along with accents. NFKD maps full-width digits to ASCII and splits accents off, which are
    then dropped ("sí" → "si"), as are emoji variation selectors and skin tones ("👍🏽" → "👍").
    """
    text = _KEYCAP.sub(r"\1", text).replace(_KEYCAP_TEN, "10")
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Sk"))
    return _WHITESPACE.sub(" ", kept.translate(_APOSTROPHES).casefold()).strip()


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N")


def _strip_ends(text: str) -> str:
    """Drop punctuation, symbols and spaces around the words ("¡Precio!" → "precio")."""
    start, end = 0, len(text)
    while start < end and not _is_word_char(text[start]):
        start += 1
    while end > start and not _is_word_char(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_blank(text: str) -> bool:
    # Zero-width characters (category Cf) are invisible, so a message of only those is empty too.
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


# --- Scores -------------------------------------------------------------------------------------

_NUMBER_WORDS: dict[str, int] = {
    # English; "eleven"/"twelve" so that they are reported as out of range, not as no number.
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    # Spanish, accent-folded. Not "una"/"un" (also the article "a") nor "once" (11, but also an
    # English word: "once they fixed it, 9" must stay 9).
    "cero": 0, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10, "doce": 12,
}  # fmt: skip

# A number in digits (a minus sign only when it is not joined to a word: "6-7" is two numbers),
# or a run of letters that may be a number word.
_NUMBER_TOKEN = re.compile(
    r"(?P<digits>(?:(?<!\w)[-\u2212])?\d+(?P<fraction>[.,]\d+)?)|(?P<word>[^\W\d_]+)"
)
# What may stand between a score and the scale's maximum: "8/10", "8 out of 10", "8 de 10".
_OUT_OF = re.compile(r"\s*(?:/|out of|of|de|sobre)\s*")

_MAX_DIGITS = 9
_FILLED_STARS = frozenset("★⭐🌟*")
_EMPTY_STARS = frozenset("☆✩")


@dataclass(frozen=True, slots=True)
class _Number:
    value: int
    start: int
    end: int


def _to_int(digits: str) -> int:
    """The value of a run of digits, optionally signed, capped at 10**9."""
    # A huge number is out of range anyway, and int() refuses strings over 4300 digits: a pasted
    # wall of digits must not crash the bot.
    sign = -1 if digits.startswith(("-", "\u2212")) else 1
    digits = digits.lstrip("-\u2212")
    return sign * (int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS)


class _Decimal(Exception):
    """A number with a fractional part was typed."""


def _numbers(folded: str) -> list[_Number]:
    """Every number in the text, in digits or words, in order of appearance."""
    found: list[_Number] = []
    for match in _NUMBER_TOKEN.finditer(folded):
        if match["fraction"]:
            raise _Decimal
        if match["digits"]:
            value = _to_int(match["digits"])
        elif match["word"] in _NUMBER_WORDS:
            value = _NUMBER_WORDS[match["word"]]
        else:
            continue
        found.append(_Number(value, match.start(), match.end()))
    return found


def _star_count(folded: str) -> int | None:
    """Filled stars in a message made only of stars ("★★★★☆" → 4), else None."""
    stars = 0
    for char in folded:
        if char in _FILLED_STARS:
            stars += 1
        elif not (char in _EMPTY_STARS or char.isspace() or unicodedata.category(char)[0] == "P"):
            return None
    # "!!!" alone is not a rating; "☆☆☆" is (zero stars), hence checking for any star at all.
    return stars if any(c in _FILLED_STARS or c in _EMPTY_STARS for c in folded) else None


def _stars_allowed(question: Question) -> bool:
    # Stars are a CSAT rating, as documented: a CES "★★★" would say how much the customer liked
    # it, not how easy it was. They count from one, so only on a scale starting at 1 and short
    # enough to tap out; on NPS (0–10) "****" is never read as a score.
    low, high = question.bounds
    return question.type is QuestionType.CSAT and low == 1 and high <= 10


# Words that may stand beside a score without making it a sentence: the scale ("8 out of 10"),
# an article ("a 10!"), a unit ("4 stars"). Any other word makes the number need a confirmation.
_SCORE_WORDS = frozenset(
    {"out", "of", "de", "sobre", "a", "an", "un", "una", "star", "stars", "estrella",
     "estrellas", "point", "points", "punto", "puntos", "pts"}
)  # fmt: skip
_LETTERS = re.compile(r"[^\W\d_]+")


def _words_around(folded: str) -> bool:
    """Whether the text has words besides its numbers and the scale's own words."""
    rest = _NUMBER_TOKEN.sub(
        lambda m: " " if m["digits"] or m["word"] in _NUMBER_WORDS else m[0], folded
    )
    return any(word not in _SCORE_WORDS for word in _LETTERS.findall(rest))


def _names_its_scale(folded: str) -> bool:
    """Whether a number is given with a scale after it ("8/10", "8 out of 10")."""
    numbers = _numbers(folded)  # already read once without a fraction: cannot raise here
    return any(
        _OUT_OF.fullmatch(folded, first.end, second.start) for first, second in pairwise(numbers)
    )


def _single_score(folded: str, high: int) -> int | InvalidReason:
    """The one score in the text, or why there is not exactly one."""
    try:
        numbers = _numbers(folded)
    except _Decimal:
        # The scales are whole numbers and rounding would be a guess that can change the result
        # (NPS 6.5 is a detractor rounded down, a passive rounded up), so ask again instead.
        return InvalidReason.AMBIGUOUS
    values: list[int] = []
    i = 0
    while i < len(numbers):
        current = numbers[i]
        following = numbers[i + 1] if i + 1 < len(numbers) else None
        if following is not None and _OUT_OF.fullmatch(folded, current.end, following.start):
            # "4/5" on a 0–10 scale is an answer on another scale; converting it would be a
            # guess, and 4 is not what the customer meant, so it is AMBIGUOUS, not a 4.
            if following.value != high:
                return InvalidReason.AMBIGUOUS
            values.append(current.value)
            i += 2
        else:
            values.append(current.value)
            i += 1
    distinct = set(values)  # "10/10, a 10!" says one thing; "7 or 8" says two
    if not distinct:
        return InvalidReason.NOT_A_NUMBER
    if len(distinct) > 1:
        return InvalidReason.AMBIGUOUS
    return distinct.pop()


def _parse_score(question: Question, folded: str) -> ParseResult:
    low, high = question.bounds
    stars = _star_count(folded)
    if stars is not None:
        if not _stars_allowed(question):
            return Invalid(InvalidReason.NOT_A_NUMBER)
        score: int | InvalidReason = stars
    else:
        score = _single_score(folded, high)
    if isinstance(score, InvalidReason):
        return Invalid(score)
    if not low <= score <= high:
        return Invalid(InvalidReason.OUT_OF_RANGE)
    if stars is None and not _names_its_scale(folded) and _words_around(folded):
        # "flood 0 yyy", "the courier was 2 hours late": the number may not be a rating. With
        # its scale ("I'd say 8 out of 10") it plainly is one.
        return Confirm(score)
    return Parsed(score)


# --- Yes / no -----------------------------------------------------------------------------------

_YES_WORDS = frozenset(
    {"yes", "yeah", "yea", "yep", "yup", "sure", "ok", "okay", "true", "si", "ja"}
)
_NO_WORDS = frozenset({"no", "nope", "nah", "false", "nein"})
# Replies that are neither yes nor no; Spanish "no sé" ("I don't know") must not read as "no".
_UNSURE_WORDS = frozenset({"maybe", "perhaps", "dunno", "quizas", "quiza"})
_PHRASES: dict[tuple[str, str], str] = {
    ("of", "course"): "yes",
    ("not", "really"): "no",
    ("not", "sure"): "unsure",
    ("no", "se"): "unsure",
    ("don't", "know"): "unsure",
    ("dont", "know"): "unsure",
}
_YES_EMOJI = frozenset("👍✅✔✓")  # compared after folding, which drops U+FE0F ("✔️" → "✔")
_NO_EMOJI = frozenset("👎❌")
# Single letters are too common inside sentences (Spanish "y" is "and"), so only alone.
_ALONE = {"y": True, "n": False}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _yes_no_signals(folded: str) -> set[str]:
    """Which of "yes", "no", "unsure" and a bare "not" the text contains."""
    signals: set[str] = set()
    if any(c in _YES_EMOJI for c in folded):
        signals.add("yes")
    if any(c in _NO_EMOJI for c in folded):
        signals.add("no")
    words = _WORD.findall(folded)
    i = 0
    while i < len(words):
        pair = (words[i], words[i + 1]) if i + 1 < len(words) else None
        if pair in _PHRASES:
            signals.add(_PHRASES[pair])
            i += 2
            continue
        word = words[i]
        if word in _YES_WORDS:
            signals.add("yes")
        elif word in _NO_WORDS:
            signals.add("no")
        elif word in _UNSURE_WORDS:
            signals.add("unsure")
        elif word == "not":
            signals.add("not")
        i += 1
    return signals


def _parse_yes_no(folded: str) -> ParseResult:
    alone = _strip_ends(folded)
    if alone in _ALONE:
        return Parsed(_ALONE[alone])
    signals = _yes_no_signals(folded)
    # Anything beside a yes ("yes and no", "of course not", "yes, maybe") turns it around or
    # makes it uncertain; a "not" beside a no ("no, not at all") only repeats it.
    if "yes" in signals and signals != {"yes"}:
        return Invalid(InvalidReason.AMBIGUOUS)
    if "no" in signals and "unsure" in signals:
        return Invalid(InvalidReason.AMBIGUOUS)
    if signals & {"yes", "no"}:
        return Parsed("yes" in signals)
    return Invalid(InvalidReason.NOT_YES_NO)


def parse_yes_no(text: str) -> bool | None:
    """A typed yes (True) or no (False), as a yes/no question reads it; None for anything else
    (a confirmation that is neither is read as a new answer instead)."""
    result = _parse_yes_no(_fold(text))
    return result.value if isinstance(result, Parsed) and isinstance(result.value, bool) else None


# --- Choices ------------------------------------------------------------------------------------

_MIN_PREFIX = 3


def _choice_key(text: str) -> str:
    """Matching key of a label or reply: folded, without surrounding punctuation or emoji.

    A label made only of symbols ("👍") keeps them, or it could never be matched.
    """
    folded = _fold(text)
    return _strip_ends(folded) or folded


def _labels(question: Question) -> list[tuple[str, str]]:
    """(key, choice id) for every label of every choice, in every locale."""
    pairs: list[tuple[str, str]] = []
    for choice in question.choices:
        texts = choice.label.values() if isinstance(choice.label, dict) else [choice.label]
        pairs.extend((_choice_key(t), choice.id) for t in texts)
    return pairs


def _one_id(ids: set[str]) -> ParseResult | None:
    if len(ids) == 1:
        return Parsed(ids.pop())
    return Invalid(InvalidReason.AMBIGUOUS) if ids else None


def _parse_choice(question: Question, text: str) -> ParseResult:
    key = _choice_key(text)
    labels = _labels(question)
    by_id = _one_id({c.id for c in question.choices if c.id == key})
    if by_id is not None:
        return by_id
    by_label = _one_id({cid for label, cid in labels if label == key})
    if by_label is not None:
        return by_label
    if key.isdecimal():  # the position shown next to the option, counted from 1
        position = _to_int(key)
        if 1 <= position <= len(question.choices):
            return Parsed(question.choices[position - 1].id)
        return Invalid(InvalidReason.OUT_OF_RANGE)
    if len(key) >= _MIN_PREFIX:
        # Several options starting alike ("Pri" for "Price" and "Privacy") is AMBIGUOUS, not
        # UNKNOWN_CHOICE: the reply did match, just not one option.
        prefixed = _one_id({cid for label, cid in labels if label.startswith(key)})
        if prefixed is not None:
            return prefixed
    return Invalid(InvalidReason.UNKNOWN_CHOICE)


# --- Typed answers ------------------------------------------------------------------------------


def parse_answer(question: Question, text: str) -> ParseResult:
    """Read a typed reply to `question` as its answer value, or say why it cannot be used.

    Built-in words are not handled here; call `detect_command` first.
    """
    if _is_blank(text):
        return Invalid(InvalidReason.EMPTY)
    if question.type is QuestionType.TEXT:
        return Parsed(text.strip())
    if question.type in SCORE_TYPES:
        return _parse_score(question, _fold(text))
    if question.type is QuestionType.YES_NO:
        return _parse_yes_no(_fold(text))
    return _parse_choice(question, text)


# --- Button payloads ----------------------------------------------------------------------------

PAYLOAD_MAX_BYTES = 64  # Telegram's callback_data limit; the tightest of the channels
_PAYLOAD = re.compile(r"a:([a-z][a-z0-9_]*):(-?[a-z0-9_]+)")
_SCORE_VALUE = re.compile(r"-?[0-9]+")


def encode_payload(question_id: str, value: int | str | bool) -> str:
    """The payload of the button answering `question_id` with `value`: "a:<question_id>:<value>".

    Booleans become "yes"/"no", scores their digits, choices their id. Raises ValueError when the
    result is over 64 bytes or could not be decoded back.
    """
    # bool before int: True is an int too, and must not become "1".
    raw = ("yes" if value else "no") if isinstance(value, bool) else str(value)
    payload = f"a:{question_id}:{raw}"
    if len(payload.encode()) > PAYLOAD_MAX_BYTES:
        raise ValueError(f"button payload is over {PAYLOAD_MAX_BYTES} bytes: {payload!r}")
    if decode_payload(payload) != (question_id, raw):
        raise ValueError(f"question id or value cannot be put in a button payload: {payload!r}")
    return payload


def decode_payload(payload: str) -> tuple[str, str] | None:
    """(question id, raw value) of a button payload, or None when it is not one of ours."""
    if len(payload.encode()) > PAYLOAD_MAX_BYTES:
        return None
    match = _PAYLOAD.fullmatch(payload)
    return (match[1], match[2]) if match else None


def _button_value(question: Question, raw: str) -> ParseResult:
    """Check a payload value strictly: we wrote it, so anything else is forged or outdated."""
    if question.type in SCORE_TYPES:
        if raw in ("yes", "no"):
            # The Yes/No of a "Did you mean N?" no longer open: stale, not a miss.
            return Invalid(InvalidReason.STALE_BUTTON)
        if not _SCORE_VALUE.fullmatch(raw):
            return Invalid(InvalidReason.NOT_A_NUMBER)
        low, high = question.bounds
        score = int(raw)
        return Parsed(score) if low <= score <= high else Invalid(InvalidReason.OUT_OF_RANGE)
    if question.type is QuestionType.YES_NO:
        answers = {"yes": True, "no": False}
        return Parsed(answers[raw]) if raw in answers else Invalid(InvalidReason.NOT_YES_NO)
    if question.type is QuestionType.CHOICE:
        known = any(c.id == raw for c in question.choices)
        return Parsed(raw) if known else Invalid(InvalidReason.UNKNOWN_CHOICE)
    # Text questions have no answer buttons, so a payload for one cannot be current.
    return Invalid(InvalidReason.STALE_BUTTON)


def parse_payload(question: Question, payload: str) -> ParseResult:
    """Read a pressed button as the answer to `question`, the question now being asked.

    STALE_BUTTON when the payload is for another question (an old message's keyboard) or is not
    a payload of ours at all; the value is then validated like a typed one, but strictly.
    """
    decoded = decode_payload(payload)
    if decoded is None or decoded[0] != question.id:
        return Invalid(InvalidReason.STALE_BUTTON)
    return _button_value(question, decoded[1])


# --- Built-in words -----------------------------------------------------------------------------

_COMMANDS: dict[str, Command] = {
    "skip": Command.SKIP, "pass": Command.SKIP, "next": Command.SKIP, "saltar": Command.SKIP,
    "stop": Command.STOP, "unsubscribe": Command.STOP, "opt out": Command.STOP,
    "optout": Command.STOP, "cancelar suscripcion": Command.STOP, "baja": Command.STOP,
    "help": Command.HELP, "ayuda": Command.HELP,
    "start": Command.START, "empezar": Command.START,
}  # fmt: skip
# Telegram sends "/start@SomeBot" in group chats.
_BOT_MENTION = re.compile(r"^(/\w+)@\w+")


def detect_command(text: str) -> Command | None:
    """The built-in word the whole message is, if any ("Stop!", "/help", "?", "Ayuda").

    Only the whole message counts: "please don't stop improving" is an answer, not STOP.
    """
    folded = _BOT_MENTION.sub(r"\1", _fold(text))
    key = _strip_ends(folded).replace("-", " ")
    if not key:
        # A lone "?" (or "¿?", "??") asks for help; other bare punctuation is nothing.
        return Command.HELP if "?" in folded else None
    return _COMMANDS.get(key)
