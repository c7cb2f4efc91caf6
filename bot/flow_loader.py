"""Reading flow TOML files into `Flow` models, with every problem reported as `PATH:LINE: message`.

Loading runs in three stages; each reports all of its problems at once, and a flow loads whole or
not at all:

1. TOML syntax (`tomllib`); a syntax error stops here, as nothing after it can be trusted.
2. Shape and types (pydantic, strict, unknown keys forbidden). Union errors are folded into one
   message about what the admin actually wrote.
3. Meaning: ids, scales, choices, branches and conditions, reachability, locales and template
   fields — checks that need the whole flow.

`tomllib` gives no positions for values, so `SourceLocator` scans the source lines for table
headers (`[[questions]]`, `[[questions.next]]`, `[context]`) and `key =` lines and maps a path
such as `("questions", 2, "type")` to the line that wrote it. It only finds lines; parsing stays
with `tomllib`.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.errors import FlowError, FlowProblem
from bot.flow_logic import END, comparisons, evaluate, locales_of
from bot.flow_model import (
    DEFAULT_SCALES,
    SCORE_TYPES,
    AllOf,
    AnswerValue,
    AnyOf,
    Branch,
    ChoiceOption,
    Comparison,
    Condition,
    Flow,
    LocalizedText,
    Not,
    Question,
    QuestionType,
    Scale,
    ScaleLabels,
)
from bot.templating import problems as template_problems

# Ids travel in chat button payloads (Telegram allows 64 bytes of callback data): keep them short.
MAX_ID_LENGTH = 32
# More points than NPS's 0–10 do not fit a row of buttons and have no use in CX surveys.
MAX_SCALE_POINTS = 11
# Conditions are checked for satisfiability by trying every combination of possible answers;
# beyond this many combinations the check is skipped rather than slowing validation down.
_MAX_COMBINATIONS = 20_000

_LOCALE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
_CONTEXT_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_TOML_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")
_LOADER_FIELDS = ("source", "path", "checksum")  # set by the loader, never by the file
_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "answered")
_ORDERING = ("lt", "lte", "gt", "gte")

Loc = tuple[str | int, ...]


# --------------------------------------------------------------------------------------------
# Line locator


@dataclass
class _ScanState:
    multiline: str | None = None  # the closing delimiter of an open multi-line string
    depth: int = 0  # open brackets of a value that spans lines


def _scan_value(text: str, state: _ScanState) -> None:
    """Track strings, comments and bracket depth across `text` (part of one line)."""
    i, n = 0, len(text)
    while i < n:
        if state.multiline is not None:
            end = text.find(state.multiline, i)
            if end == -1:
                return
            i = end + 3
            state.multiline = None
            continue
        ch = text[i]
        if ch == "#":
            return
        if text.startswith(('"""', "'''"), i):
            state.multiline = text[i : i + 3]
            i += 3
            continue
        if ch in "\"'":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if ch == '"' and text[i] == "\\" else 1
            i += 1
            continue
        if ch in "[{":
            state.depth += 1
        elif ch in "]}":
            state.depth -= 1
        i += 1


def _split_key(key: str) -> list[str]:
    """`questions.next` → ["questions", "next"]; `"a.b".c` → ["a.b", "c"]."""
    parts: list[str] = []
    for m in re.finditer(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*(?:\.|$)', key):
        token = m.group(1)
        parts.append(token[1:-1] if token[:1] in "\"'" else token)
    return parts


_KEY_LINE = re.compile(r'^\s*((?:"(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_.\- ])+?)\s*=(.*)$')
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class SourceLocator:
    """Maps a path into a flow document (`("questions", 2, "next", 0, "goto")`) to a line."""

    def __init__(self, source: str) -> None:
        self._lines: dict[Loc, int] = {}
        self._array_index: dict[Loc, int] = {}
        table: Loc = ()
        state = _ScanState()
        array_path: Loc = ()
        item = 0
        for number, line in enumerate(source.splitlines(), start=1):
            if state.multiline is not None:
                _scan_value(line, state)
                continue
            stripped = line.strip()
            if state.depth > 0:
                # Inside an array that spans lines: an item opening at depth 1 gets its own line,
                # so `choices = [ {id = "a", ...}, {id = "b", ...} ]` points at each choice.
                if state.depth == 1 and (stripped[:1] in "{\"'[" or stripped[:1].isdigit()):
                    self._lines.setdefault((*array_path, item), number)
                    item += 1
                _scan_value(line, state)
                continue
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER.match(line)
            if header and not _KEY_LINE.match(line):
                keys = _split_key(header.group(2))
                if header.group(1) == "[[":
                    parent = self._resolve(keys[:-1])
                    array = (*parent, keys[-1])
                    index = self._array_index.get(array, -1) + 1
                    self._array_index[array] = index
                    table = (*array, index)
                else:
                    table = self._resolve(keys)
                # `[questions.next.if.not]` also defines `if` (implicitly) on this line.
                for end in range(1, len(table) + 1):
                    self._lines.setdefault(table[:end], number)
                continue
            key_line = _KEY_LINE.match(line)
            if key_line is None:
                continue
            path = (*table, *_split_key(key_line.group(1)))
            self._lines.setdefault(path, number)
            _scan_value(key_line.group(2), state)
            if state.depth > 0:
                array_path, item = path, 0

    def _resolve(self, keys: Sequence[str]) -> Loc:
        # A key naming an array of tables refers to its latest element, as in TOML itself.
        path: Loc = ()
        for key in keys:
            path = (*path, key)
            if path in self._array_index:
                path = (*path, self._array_index[path])
        return path

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of `loc`, or of its nearest enclosing key or table; None when unknown."""
        for end in range(len(loc), 0, -1):
            line = self._lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


# --------------------------------------------------------------------------------------------
# Public API


def load_flow_source(text: str, path: str) -> Flow:
    """Parse and validate one flow; raises `FlowError` listing every problem found.

    The returned flow carries `source` (the text), `path` and `checksum` (sha256 hex of the text).
    """
    locator = SourceLocator(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FlowError([_syntax_problem(exc, text, path)]) from None

    problems = [
        FlowProblem(path, locator.line_of(loc), message) for loc, message in _pre_checks(raw)
    ]
    for key in _LOADER_FIELDS:
        raw.pop(key, None)
    try:
        # Strict JSON-mode validation: no "yes" → True or "5" → 5 coercion, while enum values
        # such as `type = "nps"` still validate. Dates were reported above and become strings.
        flow = Flow.model_validate_json(json.dumps(raw, default=str), strict=True)
    except ValidationError as exc:
        problems += [
            FlowProblem(path, locator.line_of(loc), message)
            for loc, message in _shape_problems(exc, raw)
        ]
        raise FlowError(_ordered(problems)) from None
    problems += [
        FlowProblem(path, locator.line_of(loc), message) for loc, message in _Checker(flow).run()
    ]
    if problems:
        raise FlowError(_ordered(problems))
    checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return flow.model_copy(update={"source": text, "path": path, "checksum": checksum})


def load_flow_file(path: Path) -> Flow:
    """Read and load one flow file; unreadable or non-UTF-8 files raise `FlowError` too."""
    return load_flow_source(read_flow_text(path), str(path))


def read_flow_text(path: Path) -> str:
    """The text of a flow file, or `FlowError` saying why it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FlowError([FlowProblem(str(path), None, "no such file")]) from None
    except IsADirectoryError:
        raise FlowError([FlowProblem(str(path), None, "is a directory, not a flow file")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise FlowError([FlowProblem(str(path), None, f"cannot read file: {reason}")]) from None
    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = (
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded);"
            " save the file as UTF-8"
        )
        raise FlowError([FlowProblem(str(path), line, message)]) from None


def validate_files(paths: Sequence[Path]) -> list[FlowProblem]:
    """Every problem in every given file (directories mean their `*.toml`), plus flow ids that
    more than one file defines. An empty list means all files are valid."""
    problems: list[FlowProblem] = []
    first_seen: dict[str, Flow] = {}
    for path in _expand(paths, problems):
        try:
            flow = load_flow_file(path)
        except FlowError as exc:
            problems += exc.problems
            continue
        other = first_seen.setdefault(flow.id, flow)
        if other is not flow:
            problems.append(duplicate_flow_problem(flow, other))
    return problems


def duplicate_flow_problem(flow: Flow, other: Flow) -> FlowProblem:
    """The problem reported when `flow` reuses the id of the already loaded `other`."""
    line = SourceLocator(flow.source).line_of(("id",))
    return FlowProblem(flow.path, line, f"flow id '{flow.id}' is already defined in {other.path}")


def _expand(paths: Sequence[Path], problems: list[FlowProblem]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                problems.append(FlowProblem(str(path), None, "directory has no *.toml flow files"))
            yield from found
        else:
            yield path


def _ordered(problems: list[FlowProblem]) -> list[FlowProblem]:
    seen: set[tuple[int | None, str]] = set()
    unique = []
    for p in problems:
        if (p.line, p.message) not in seen:
            seen.add((p.line, p.message))
            unique.append(p)
    # Stable: problems on one line keep the order they were found in; unknown lines go last.
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0))


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str, path: str) -> FlowProblem:
    message = str(exc)
    line: int | None = None
    if m := _TOML_AT_LINE.search(message):
        line = int(m.group(1))
        message = message[: m.start()]
    elif m := _TOML_AT_END.search(message):
        line = max(1, len(text.splitlines()))
        message = message[: m.start()] + " at end of file"
    return FlowProblem(path, line, f"invalid TOML: {message}")


# --------------------------------------------------------------------------------------------
# Stage 1½: things pydantic would accept or explain badly


def _pre_checks(raw: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    for key in _LOADER_FIELDS:
        if key in raw:
            yield (key,), f"unknown key '{key}' (it is set by cxbot, not by the flow file)"
    yield from _dates(raw, ())


def _dates(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, datetime | date | time):
        yield loc, f"{_fmt(loc)}: dates and times are not allowed in flow files; quote the text"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _dates(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _dates(v, (*loc, i))


# --------------------------------------------------------------------------------------------
# Stage 2: pydantic errors → messages about what the admin wrote

_CONDITION_TAGS = {"Comparison": "question", "AllOf": "all", "AnyOf": "any", "Not": "not"}
_TYPE_WORDS = {
    "str": "a string",
    "int": "a whole number",
    "bool": "true/false",
    "dict[str,str]": "a table of locale = text",
}
_CONDITION_HELP = (
    "a condition must be a table with 'question' and an operator (eq, ne, lt, lte, gt, gte, in,"
    " answered), or with 'all', 'any' or 'not'"
)


def _fmt(loc: Sequence[str | int]) -> str:
    out = ""
    for token in loc:
        out += f"[{token}]" if isinstance(token, int) else (f".{token}" if out else token)
    return out or "flow"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, float):
        return f"the decimal number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


@dataclass
class _Union:
    value: Any
    members: list[str] = field(default_factory=list)
    matched: bool = False


def _shape_problems(exc: ValidationError, raw: dict[str, Any]) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    unions: dict[Loc, _Union] = {}
    bad_conditions: set[Loc] = set()
    for err in exc.errors():
        cursor: Any = raw
        clean: Loc = ()
        loc = err["loc"]
        keep = True
        for pos, token in enumerate(loc):
            if _has(cursor, token):
                clean, cursor = (*clean, token), cursor[token]
            elif isinstance(token, str) and pos == len(loc) - 1 and err["type"] == "missing":
                clean = (*clean, token)
            elif isinstance(token, str) and token in _CONDITION_TAGS:
                # pydantic tries each kind of condition; keep only the errors of the kind the
                # admin meant, judged by its keys.
                meant = next(
                    (
                        tag
                        for tag, key in _CONDITION_TAGS.items()
                        if isinstance(cursor, dict) and key in cursor
                    ),
                    None,
                )
                if meant is None:
                    bad_conditions.add(clean)
                if meant != token:
                    keep = False
                    break
            else:
                # A member of a plain union (`str | dict[str, str]`, `int | str | bool`): the
                # errors say "not a str", "not a dict"... — fold them into one message, unless the
                # value is a container of the right kind and the error is inside it.
                member = str(token)
                union = unions.setdefault(clean, _Union(cursor))
                union.members.append(member)
                container = (member.startswith("dict") and isinstance(cursor, dict)) or (
                    member.startswith("list") and isinstance(cursor, list)
                )
                if container:
                    union.matched = True
                    continue
                keep = False
                break
        if keep:
            out.append((clean, _shape_message(err, clean, raw)))
    for loc in sorted(bad_conditions, key=_fmt):
        out.append((loc, f"{_fmt(loc)}: {_CONDITION_HELP}"))
    for loc, union in unions.items():
        if not union.matched:
            words = [_TYPE_WORDS.get(m, m) for m in dict.fromkeys(union.members)]
            expected = ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
            out.append((loc, f"{_fmt(loc)}: expected {expected}, got {_kind(union.value)}"))
    return out


def _has(cursor: Any, token: str | int) -> bool:
    """Whether `token` names an element of the raw TOML value `cursor`."""
    if isinstance(token, int):
        return isinstance(cursor, list) and 0 <= token < len(cursor)
    return isinstance(cursor, dict) and token in cursor


def _shape_message(err: Any, loc: Loc, raw: dict[str, Any]) -> str:
    kind = err["type"]
    where = _fmt(loc)
    value = err.get("input")
    if len(loc) == 2 and loc[0] == "context" and loc[1] in Flow.model_fields:
        # TOML puts every key after a `[context]` header inside that table, a common slip.
        return (
            f"'{loc[1]}' is inside the [context] table; move top-level keys such as"
            f" '{loc[1]}' above the [context] header"
        )
    if kind == "missing":
        parent = loc[:-1]
        inside = f"{_fmt(parent)}: " if parent else ""
        return f"{inside}missing required key '{loc[-1]}'"
    if kind == "extra_forbidden":
        parent = loc[:-1]
        inside = f"{_fmt(parent)}: " if parent else ""
        hint = ""
        allowed = _allowed_keys(parent, raw)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        elif allowed:
            hint = f"; expected one of {', '.join(allowed)}"
        return f"{inside}unknown key '{loc[-1]}'{hint}"
    if kind == "enum" and loc and loc[-1] == "type":
        types = ", ".join(t.value for t in QuestionType)
        return f"{where}: unknown question type '{value}'; expected one of {types}"
    if kind == "string_pattern_mismatch":
        return (
            f"{where}: {json.dumps(value)} is not a valid id; use lowercase letters, digits and"
            " underscores, starting with a letter"
        )
    expected = {
        "string_type": "a string",
        "bool_type": "true or false",
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "list_type": "an array",
        "model_type": "a table",
        "dict_type": "a table",
        "model_attributes_type": "a table",
    }.get(kind)
    if expected is not None:
        return f"{where}: expected {expected}, got {_kind(value)}"
    return f"{where}: {str(err['msg']).replace('Input should be', 'must be')}"


_CHILD_MODELS: dict[tuple[type[BaseModel], str], type[BaseModel]] = {
    (Flow, "questions"): Question,
    (Question, "next"): Branch,
    (Question, "scale"): Scale,
    (Question, "labels"): ScaleLabels,
    (Question, "choices"): ChoiceOption,
}
_CONDITION_FIELDS: set[tuple[type[BaseModel], str]] = {
    (Question, "when"),
    (Branch, "if"),
    (Not, "not"),
}
_CONDITION_LISTS: set[tuple[type[BaseModel], str]] = {(AllOf, "all"), (AnyOf, "any")}


def _allowed_keys(loc: Loc, raw: dict[str, Any]) -> list[str]:
    """The keys the model at `loc` accepts, for "did you mean" hints ([] when unsure)."""
    model: type[BaseModel] | None = Flow
    in_condition_list = False
    cursor: Any = raw
    for token in loc:
        cursor = cursor[token] if _has(cursor, token) else None
        if isinstance(token, int):
            if in_condition_list:
                model, in_condition_list = _condition_model(cursor), False
            continue  # an element of questions/next/choices keeps the list's model
        if model is None or in_condition_list:
            return []
        pair = (model, token)
        if pair in _CONDITION_LISTS:
            in_condition_list = True
        elif pair in _CONDITION_FIELDS:
            model = _condition_model(cursor)
        else:
            model = _CHILD_MODELS.get(pair)
    if model is None or in_condition_list:
        return []
    keys = [f.alias or name for name, f in model.model_fields.items()]
    return [k for k in keys if k not in _LOADER_FIELDS]


def _condition_model(cursor: Any) -> type[BaseModel]:
    # Which kind of condition the admin meant, judged by its keys.
    if isinstance(cursor, dict):
        for model, key in ((AllOf, "all"), (AnyOf, "any"), (Not, "not")):
            if key in cursor:
                return model
    return Comparison


# --------------------------------------------------------------------------------------------
# Stage 3: meaning


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _operators(c: Comparison) -> list[tuple[str, Any]]:
    values = (c.eq, c.ne, c.lt, c.lte, c.gt, c.gte, c.in_, c.answered)
    return [(name, v) for name, v in zip(_OPERATORS, values, strict=True) if v is not None]


_OTHER_TEXT = "\x00any other text"  # stands for every text answer no condition mentions


class _Checker:
    """The whole-flow checks; `run()` yields (path, message) pairs."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.out: list[tuple[Loc, str]] = []
        self.index = {q.id: i for i, q in reversed(list(enumerate(flow.questions)))}
        self.locales = locales_of(flow)
        self.text_locales = list(dict.fromkeys([*self.locales, flow.default_locale]))
        self.literals: dict[str, set[str]] = {}
        self.unsound: set[int] = set()  # id() of conditions with a reported problem
        for q in flow.questions:
            conditions = [q.when] + [b.if_ for b in q.next]
            for cond in conditions:
                if cond is None:
                    continue
                for c in comparisons(cond):
                    values = [c.eq, c.ne, *(c.in_ or [])]
                    strings = {v for v in values if isinstance(v, str)}
                    self.literals.setdefault(c.question, set()).update(strings)

    def add(self, loc: Loc, message: str) -> None:
        self.out.append((loc, message))

    def run(self) -> list[tuple[Loc, str]]:
        flow = self.flow
        self._id(("id",), flow.id, "flow id")
        self._locales()
        for key in flow.context:
            if not _CONTEXT_KEY.match(key):
                self.add(
                    ("context", key),
                    f"context key '{key}' must use lowercase letters, digits and underscores,"
                    " starting with a letter (templates refer to it as {context.KEY})",
                )
        if flow.intro is not None:
            self._text(("intro",), flow.intro, "intro", required=False)
        if flow.thanks is not None:
            self._text(("thanks",), flow.thanks, "thanks", required=False)
        if not flow.questions:
            self.add(("questions",), "the flow has no questions; add at least one [[questions]]")
            return self.out
        never_asked: set[int] = set()
        for i, q in enumerate(flow.questions):
            if self._question(i, q):
                never_asked.add(i)
        self._reachability(never_asked)
        return self.out

    # -- flow level

    def _id(self, loc: Loc, value: str, what: str) -> None:
        if len(value) > MAX_ID_LENGTH:
            self.add(
                loc,
                f"{what} '{value}' is {len(value)} characters long; ids may have at most"
                f" {MAX_ID_LENGTH} (they are sent in chat button payloads)",
            )

    def _locales(self) -> None:
        flow = self.flow
        for i, code in enumerate([flow.default_locale, *flow.locales]):
            loc: Loc = ("default_locale",) if i == 0 else ("locales", i - 1)
            if not _LOCALE.match(code):
                self.add(loc, f"'{code}' is not a locale code like 'en', 'es' or 'pt-BR'")
        for i, code in enumerate(flow.locales):
            if code in flow.locales[:i]:
                self.add(("locales", i), f"locale '{code}' is listed twice in locales")
        if flow.locales and flow.default_locale not in flow.locales:
            self.add(
                ("locales",),
                f"locales ({', '.join(flow.locales)}) do not include default_locale"
                f" '{flow.default_locale}'",
            )

    def _text(self, loc: Loc, text: LocalizedText, label: str, *, required: bool) -> None:
        items: list[tuple[str | None, str]]
        if isinstance(text, dict):
            for code in self.text_locales:
                if code not in text:
                    self.add(
                        loc,
                        f"{label} has no '{code}' text (the flow's locales are"
                        f" {', '.join(self.text_locales)})",
                    )
            for code in text:
                if code not in self.text_locales:
                    self.add(
                        (*loc, code),
                        f"{label} has a '{code}' text, but '{code}' is not listed in locales",
                    )
            items = list(text.items())
        else:
            items = [(None, text)]
        for locale, value in items:
            where = loc if locale is None else (*loc, locale)
            if required and not value.strip():
                self.add(where, f"{label} is empty")
            for message in template_problems(value, context_keys=self.flow.context):
                self.add(where, f"{label}: {message}")

    # -- questions

    def _question(self, i: int, q: Question) -> bool:
        """Check one question; True when its `when` can never hold (so it is never asked)."""
        at: Loc = ("questions", i)
        name = f"question '{q.id}'"
        self._id((*at, "id"), q.id, "question id")
        if q.id == END:
            self.add(
                (*at, "id"), f"'{END}' cannot be a question id: `goto = \"{END}\"` ends a flow"
            )
        first = self.index[q.id]
        if first != i:
            self.add(
                (*at, "id"),
                f"duplicate question id '{q.id}' (also used by questions[{first}])",
            )
        self._text((*at, "text"), q.text, f"{name} text", required=True)
        self._scale(at, q, name)
        self._choices(at, q, name)
        if q.max_length is not None and q.type is not QuestionType.TEXT:
            self.add((*at, "max_length"), f"{name}: max_length only applies to text questions")
        never_asked = False
        if (
            q.when is not None
            and self._condition((*at, "when"), q.when, i, allow_self=False, label=f"{name} when")
            and True not in self._outcomes(q.when)
        ):
            never_asked = True
            self.add(
                (*at, "when"),
                f"{name} can never be asked: its `when` condition can never be true",
            )
        self._branches(at, i, q, name)
        return never_asked

    def _scale(self, at: Loc, q: Question, name: str) -> None:
        if q.scale is not None:
            if q.type is not QuestionType.CES:
                fixed = ", ".join(
                    f"{t.value} is always {DEFAULT_SCALES[t][0]}–{DEFAULT_SCALES[t][1]}"
                    for t in (QuestionType.NPS, QuestionType.CSAT)
                )
                self.add(
                    (*at, "scale"),
                    f"{name}: scale only applies to ces questions ({fixed})",
                )
            else:
                lo, hi = q.scale.min, q.scale.max
                if lo < 0:
                    self.add((*at, "scale"), f"{name}: scale min must not be negative (got {lo})")
                if lo >= hi:
                    self.add(
                        (*at, "scale"),
                        f"{name}: scale min ({lo}) must be less than max ({hi})",
                    )
                elif hi - lo + 1 > MAX_SCALE_POINTS:
                    self.add(
                        (*at, "scale"),
                        f"{name}: scale {lo}–{hi} has {hi - lo + 1} points; at most"
                        f" {MAX_SCALE_POINTS} fit on a row of buttons",
                    )
        if q.labels is not None:
            if q.type not in SCORE_TYPES:
                self.add(
                    (*at, "labels"),
                    f"{name}: labels only apply to score questions (nps, ces, csat)",
                )
            for end, text in (("min", q.labels.min), ("max", q.labels.max)):
                if text is not None:
                    self._text((*at, "labels", end), text, f"{name} labels.{end}", required=False)

    def _choices(self, at: Loc, q: Question, name: str) -> None:
        if q.type is not QuestionType.CHOICE:
            if q.choices:
                self.add((*at, "choices"), f"{name}: choices only apply to choice questions")
            return
        if len(q.choices) < 2:
            self.add(
                (*at, "choices") if q.choices else at,
                f"{name}: a choice question needs at least 2 choices (has {len(q.choices)})",
            )
        seen: set[str] = set()
        for k, choice in enumerate(q.choices):
            loc: Loc = (*at, "choices", k)
            self._id((*loc, "id"), choice.id, "choice id")
            if choice.id in seen:
                self.add((*loc, "id"), f"{name}: duplicate choice id '{choice.id}'")
            seen.add(choice.id)
            self._text((*loc, "label"), choice.label, f"{name} choice '{choice.id}'", required=True)

    def _branches(self, at: Loc, i: int, q: Question, name: str) -> None:
        unconditional = False
        for j, branch in enumerate(q.next):
            loc: Loc = (*at, "next", j)
            if unconditional:
                self.add(
                    loc,
                    f"{name}: this branch is never used: an earlier branch has no `if`"
                    " and is always taken",
                )
            if branch.goto != END:
                target = self.index.get(branch.goto)
                if target is None:
                    self.add(
                        (*loc, "goto"),
                        f"{name}: goto '{branch.goto}': no such question"
                        f' (use a later question id or "{END}")',
                    )
                elif target <= i:
                    where = "itself" if target == i else f"'{branch.goto}', which comes before it"
                    self.add(
                        (*loc, "goto"),
                        f"{name}: goto {where}; branches may only jump forward",
                    )
            if branch.if_ is None:
                unconditional = True
            elif self._condition(
                (*loc, "if"), branch.if_, i, allow_self=True, label=f"{name} next[{j}].if"
            ) and True not in self._outcomes(branch.if_):
                self.add(
                    (*loc, "if"),
                    f"{name}: the branch to '{branch.goto}' can never be taken: its"
                    " condition can never be true",
                )

    # -- conditions

    def _condition(
        self, loc: Loc, cond: Condition, owner: int, *, allow_self: bool, label: str
    ) -> bool:
        """Report problems inside `cond`; True when it is sound enough to reason about.

        Unsound conditions are remembered so that later checks (satisfiability, reachability)
        do not pile consequences on top of the problem already reported.
        """
        sound = self._condition_sound(loc, cond, owner, allow_self=allow_self, label=label)
        if not sound:
            self.unsound.add(id(cond))
        return sound

    def _condition_sound(
        self, loc: Loc, cond: Condition, owner: int, *, allow_self: bool, label: str
    ) -> bool:
        owner_id = self.flow.questions[owner].id
        if isinstance(cond, AllOf | AnyOf):
            key, items = ("all", cond.all) if isinstance(cond, AllOf) else ("any", cond.any)
            if not items:
                self.add((*loc, key), f"{label}: {key} = [] needs at least one condition")
                return False
            results = [
                self._condition_sound((*loc, key, k), c, owner, allow_self=allow_self, label=label)
                for k, c in enumerate(items)
            ]
            return all(results)
        if isinstance(cond, Not):
            return self._condition_sound(
                (*loc, "not"), cond.not_, owner, allow_self=allow_self, label=label
            )
        operators = _operators(cond)
        if not operators:
            self.add(
                loc,
                f"{label}: condition on '{cond.question}' has no operator; add one of"
                f" {', '.join(_OPERATORS)}",
            )
            return False
        target = self.index.get(cond.question)
        if target is None:
            self.add((*loc, "question"), f"{label}: refers to unknown question '{cond.question}'")
            return False
        if target > owner or (target == owner and not allow_self):
            if allow_self:
                message = (
                    f"branch condition of question '{owner_id}' refers to '{cond.question}',"
                    " which comes after it; conditions may only use answers given so far"
                )
            else:
                message = (
                    f"`when` of question '{owner_id}' refers to '{cond.question}', which is not"
                    " asked before it; conditions may only use earlier answers"
                )
            self.add((*loc, "question"), message)
            return False
        ref = self.flow.questions[target]
        sound = True
        for op, value in operators:
            problem = _operand_problem(ref, op, value)
            if problem is not None:
                self.add((*loc, op), f"{label}: {problem}")
                sound = False
        return sound

    def _domain(self, q: Question) -> list[AnswerValue] | None:
        values: list[AnswerValue] = [None]
        if q.type in SCORE_TYPES:
            lo, hi = q.bounds
            if hi < lo or hi - lo > 100:
                return None
            values += range(lo, hi + 1)
        elif q.type is QuestionType.YES_NO:
            values += [True, False]
        elif q.type is QuestionType.CHOICE:
            values += [c.id for c in q.choices]
        else:
            values += [*sorted(self.literals.get(q.id, set())), _OTHER_TEXT]
        return values

    def _outcomes(self, cond: Condition) -> set[bool]:
        """The truth values `cond` can take over all possible answers (both when unknown)."""
        if id(cond) in self.unsound:
            return {True, False}
        refs = sorted({c.question for c in comparisons(cond)})
        domains: list[list[AnswerValue]] = []
        for ref in refs:
            target = self.index.get(ref)
            domain = None if target is None else self._domain(self.flow.questions[target])
            if domain is None:
                return {True, False}
            domains.append(domain)
        if math.prod(len(d) for d in domains) > _MAX_COMBINATIONS:
            return {True, False}
        seen: set[bool] = set()
        for combo in itertools.product(*domains):
            seen.add(evaluate(cond, dict(zip(refs, combo, strict=True))))
            if len(seen) == 2:
                break
        return seen

    # -- reachability

    def _reachability(self, never_asked: set[int]) -> None:
        questions = self.flow.questions
        count = len(questions)
        asked: set[int] = set()
        considered: set[int] = set()
        todo = [0]
        while todo:
            j = todo.pop()
            if j >= count or j in considered:
                continue
            considered.add(j)
            q = questions[j]
            outcomes = {True} if q.when is None else self._outcomes(q.when)
            if False in outcomes:
                todo.append(j + 1)  # skipped by its `when`: the walk goes on after it
            if True not in outcomes:
                continue
            asked.add(j)
            for branch in q.next:
                if branch.if_ is not None and True not in self._outcomes(branch.if_):
                    continue
                target = self.index.get(branch.goto)
                if branch.goto != END and (target is None or target <= j):
                    continue  # a bad goto was reported; judge the rest as if it were absent
                if target is not None:
                    todo.append(target)
                if branch.if_ is None:
                    break
            else:
                todo.append(j + 1)
        for j, q in enumerate(questions):
            if j not in asked and j not in never_asked:
                self.add(
                    ("questions", j),
                    f"question '{q.id}' is unreachable: no branch or fall-through from the first"
                    " question leads to it",
                )


def _operand_problem(ref: Question, op: str, value: Any) -> str | None:
    """Why `op = value` can never make sense for answers to `ref`, or None."""
    if op == "answered":
        return None
    if op in _ORDERING:
        if ref.type not in SCORE_TYPES:
            return (
                f"{op} compares scores, but '{ref.id}' is a {ref.type.value} question;"
                " use eq, ne or in"
            )
        lo, hi = ref.bounds
        never = {
            "lt": value <= lo,
            "lte": value < lo,
            "gt": value >= hi,
            "gte": value > hi,
        }[op]
        if never:
            return f"{op} = {value} can never hold: '{ref.id}' is scored {lo}–{hi}"
        return None
    values = value if op == "in" else [value]
    if op == "in" and not values:
        return "in = [] can never hold; list at least one value"
    for v in values:
        message = _value_problem(ref, v)
        if message is not None:
            return f"{op} = {_toml(value)}: {message}"
    return None


def _value_problem(ref: Question, value: Any) -> str | None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if ref.type in SCORE_TYPES:
        lo, hi = ref.bounds
        if not is_int:
            return f"'{ref.id}' is a {ref.type.value} question scored {lo}–{hi}; compare a number"
        if not lo <= value <= hi:
            return f"{value} is outside the {lo}–{hi} scale of '{ref.id}'"
        return None
    if ref.type is QuestionType.YES_NO:
        if not isinstance(value, bool):
            return f"'{ref.id}' is a yes_no question; compare with true or false"
        return None
    if ref.type is QuestionType.CHOICE:
        ids = [c.id for c in ref.choices]
        if not isinstance(value, str) or value not in ids:
            return f"{_toml(value)} is not a choice of '{ref.id}' (choices: {', '.join(ids)})"
        return None
    if not isinstance(value, str):
        return f"'{ref.id}' is a text question; compare with a string"
    return None


__all__ = [
    "MAX_ID_LENGTH",
    "SourceLocator",
    "duplicate_flow_problem",
    "load_flow_file",
    "load_flow_source",
    "read_flow_text",
    "validate_files",
]
