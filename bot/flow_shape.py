"""Stages 1½ and 2 of loading a flow: pre-checks and pydantic errors turned into messages.

Stage 1½ reports what pydantic would accept or explain badly: keys the loader sets itself and
TOML dates and times. Stage 2 turns a pydantic `ValidationError` into messages about what the
admin actually wrote; union errors (conditions, `str | dict[str, str]`...) are folded into one.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.flow_model import (
    AllOf,
    AnyOf,
    Branch,
    ChoiceOption,
    Comparison,
    Flow,
    Not,
    Question,
    QuestionType,
    Scale,
    ScaleLabels,
)
from bot.flow_source import Loc

LOADER_FIELDS = ("source", "path", "checksum")
"""`Flow` fields set by the loader, never by the file."""


# --------------------------------------------------------------------------------------------
# Stage 1½: things pydantic would accept or explain badly


def pre_checks(raw: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Problems in the raw TOML that pydantic would accept or explain badly (stage 1½)."""
    for key in LOADER_FIELDS:
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
    " answered, sentiment), or with 'all', 'any' or 'not'"
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


def shape_problems(exc: ValidationError, raw: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The errors of `exc` as (path, message) pairs about what `raw` holds (stage 2)."""
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
    return [k for k in keys if k not in LOADER_FIELDS]


def _condition_model(cursor: Any) -> type[BaseModel]:
    # Which kind of condition the admin meant, judged by its keys.
    if isinstance(cursor, dict):
        for model, key in ((AllOf, "all"), (AnyOf, "any"), (Not, "not")):
            if key in cursor:
                return model
    return Comparison


__all__ = ["LOADER_FIELDS", "pre_checks", "shape_problems"]
