"""Placeholders in flow texts: `{customer.first_name}`, `{context.order_id|your order}`.

A template is plain text with fields in single braces; `{{` and `}}` stand for literal braces.
A field may carry a fallback after a bar (`{customer.first_name|there}`), used when the value is
missing or blank. Nothing here evaluates code: a field is a dotted name looked up in two mappings.

Known fields:

- `customer.first_name`, `customer.last_name`, `customer.name` (the full name);
- `context.KEY` for a key the flow declares in its `[context]` table.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

CUSTOMER_FIELDS = ("first_name", "last_name", "name")
_CONTEXT_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
# Punctuation that must not follow a space left behind by an empty field ("Hi !" → "Hi!").
_CLOSING_PUNCTUATION = frozenset(",.;:!?)…")


class TemplateError(ValueError):
    """A template is malformed (unbalanced braces, empty field) or names an unknown field."""


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One `{name|fallback}` placeholder; `fallback` is None when no bar was written."""

    name: str
    fallback: str | None = None

    @property
    def namespace(self) -> str:
        """The part before the first dot: `customer` or `context` for a known field."""
        return self.name.partition(".")[0]

    @property
    def key(self) -> str:
        """The part after the first dot (`first_name`, `order_id`); empty without a dot."""
        return self.name.partition(".")[2]

    def __str__(self) -> str:
        tail = "" if self.fallback is None else f"|{self.fallback}"
        return f"{{{self.name}{tail}}}"


_Part = str | TemplateField


@lru_cache(maxsize=1024)
def _parse(template: str) -> tuple[_Part, ...]:
    # Flow texts are rendered on every message; the cache keeps parsing off that path.
    parts: list[_Part] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch == "{":
            if template.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = template.find("}", i + 1)
            nested = template.find("{", i + 1)
            if end == -1:
                raise TemplateError(f"unclosed '{{' at character {i + 1}: {_excerpt(template, i)}")
            if nested != -1 and nested < end:
                raise TemplateError(
                    f"'{{' inside a field at character {nested + 1}: {_excerpt(template, i)}"
                    " (write '{{' for a literal brace)"
                )
            body = template[i + 1 : end]
            name, bar, fallback = body.partition("|")
            name = name.strip()
            if not name:
                raise TemplateError(
                    f"empty field '{{{body}}}' at character {i + 1}"
                    " (write '{{' and '}}' for literal braces)"
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(TemplateField(name, fallback if bar else None))
            i = end + 1
        elif ch == "}":
            if template.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise TemplateError(
                f"single '}}' at character {i + 1}: {_excerpt(template, i)}"
                " (write '}}' for a literal brace)"
            )
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _excerpt(template: str, at: int) -> str:
    return repr(template[max(0, at - 10) : at + 20])


def fields(template: str) -> list[TemplateField]:
    """The placeholders of `template`, in order; raises `TemplateError` on malformed braces."""
    return [p for p in _parse(template) if isinstance(p, TemplateField)]


def problems(template: str, *, context_keys: Collection[str]) -> list[str]:
    """Messages for everything wrong with `template` given the flow's declared context keys.

    Empty when the template is fine. Used by the flow loader, which adds path and line.
    """
    try:
        found = fields(template)
    except TemplateError as exc:
        return [str(exc)]
    out: list[str] = []
    for f in found:
        if f.namespace == "customer" and f.key in CUSTOMER_FIELDS:
            continue
        if f.namespace == "context" and _CONTEXT_KEY.match(f.key):
            if f.key not in context_keys:
                out.append(
                    f"template field {f} uses context key '{f.key}', which the flow's"
                    " [context] table does not declare"
                )
            continue
        out.append(
            f"unknown template field {f}; use customer.first_name, customer.last_name,"
            " customer.name or context.KEY"
        )
    return out


def _customer_value(customer: Mapping[str, str | None], key: str) -> str:
    def get(k: str) -> str:
        return (customer.get(k) or "").strip()

    # Channels give different pieces (Telegram: first/last name; Slack: a display name), so each
    # field is derived from the others when missing.
    first, last, full = get("first_name"), get("last_name"), get("name")
    if key == "first_name":
        return first or (full.split()[0] if full else "")
    if key == "last_name":
        return last
    return full or " ".join(x for x in (first, last) if x)


def render(
    template: str,
    *,
    customer: Mapping[str, str | None],
    context: Mapping[str, str],
    context_defaults: Mapping[str, str],
) -> str:
    """Fill the fields of `template`.

    A field's value wins when present and not blank; otherwise its inline fallback; for
    `context.KEY` then the flow's declared default; otherwise the empty string, in which case the
    space it leaves is tidied ("Hi {customer.first_name}!" → "Hi!"). Raises `TemplateError` for
    malformed templates or unknown fields (flows are validated, so that means a programming error).
    """
    out = ""
    strip_next = False  # an empty field at the start of a line: drop the space after it too
    parts = _parse(template)
    for index, part in enumerate(parts):
        if isinstance(part, str):
            out += part.lstrip(" \t") if strip_next else part
            strip_next = False
            continue
        if part.namespace == "customer" and part.key in CUSTOMER_FIELDS:
            value = _customer_value(customer, part.key)
            if not value and part.fallback is not None:
                value = part.fallback
        elif part.namespace == "context" and part.key:
            value = (context.get(part.key) or "").strip()
            if not value:
                value = (
                    part.fallback
                    if part.fallback is not None
                    else context_defaults.get(part.key, "")
                )
        else:
            raise TemplateError(f"unknown template field {part}")
        if value:
            out += value
            continue
        following = parts[index + 1] if index + 1 < len(parts) else ""
        after = following if isinstance(following, str) else ""
        if out == "" or out.endswith("\n"):
            strip_next = True
        else:
            out = _drop_gap(out, after)
    return out


def _drop_gap(before: str, after: str) -> str:
    # An empty field leaves "Hi !" or "Thanks  for": drop the space before it when the text after
    # starts with a space, punctuation or nothing at all. Only the spot of the empty field is
    # touched, so an author's own spacing elsewhere stays as written.
    if not before.endswith((" ", "\t")):
        return before
    if after == "" or after[0] in " \t\n" or after[0] in _CLOSING_PUNCTUATION:
        return before.rstrip(" \t")
    return before
