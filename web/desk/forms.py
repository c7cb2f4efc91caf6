"""Reading the fields of a POSTed form: each bad field is a 400 that says which and why."""

from __future__ import annotations

import re

from starlette.datastructures import FormData

from web.desk.errors import DeskRefusal

MAX_ID = 2**31 - 1  # ids are INTEGER columns (32-bit on PostgreSQL)
_DIGITS = re.compile(r"[0-9]{1,10}")


def text(
    form: FormData,
    name: str,
    *,
    label: str,
    max_length: int,
    required: bool = True,
    back: str | None = None,
) -> str:
    """The field's text, stripped; 400 when it is missing (and required), not text, or longer
    than `max_length` characters."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise DeskRefusal(400, f"{label} must be text, not a file.", back=back)
    value = value.strip()
    if required and not value:
        raise DeskRefusal(400, f"{label} is empty; write something first.", back=back)
    if len(value) > max_length:
        raise DeskRefusal(
            400,
            f"{label} is {len(value):,} characters long; the most is {max_length:,}.",
            back=back,
        )
    return value


def secret(form: FormData, name: str, *, label: str, max_length: int = 1024) -> str:
    """A password as typed (not stripped: spaces may be part of it)."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise DeskRefusal(400, f"{label} must be text, not a file.")
    if len(value) > max_length:
        raise DeskRefusal(400, f"{label} is longer than {max_length:,} characters.")
    return value


def row_id(value: str) -> int | None:
    """A stored row's id from a path or field; None when it cannot name a row."""
    value = value.strip()
    # ASCII digits only: str.isdigit() is true of '²', which int() refuses.
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def choice(
    form: FormData, name: str, *, label: str, allowed: tuple[str, ...], back: str | None = None
) -> str:
    """One of `allowed`; 400 naming the allowed values otherwise."""
    value = form.get(name, "")
    if not isinstance(value, str) or value not in allowed:
        raise DeskRefusal(400, f"{label} must be one of: {', '.join(allowed)}.", back=back)
    return value
