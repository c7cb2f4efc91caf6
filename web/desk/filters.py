"""The queue's filters as query parameters: read into a `QueueFilter`, written back into links.

Every parameter is optional; an empty one means "any". A value that cannot be a filter (a
status that does not exist, a date that is not YYYY-MM-DD, a page that is not a number) is a
400 that names the parameter, never a silently different queue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from urllib.parse import urlencode

from bot.desk_views import QueueFilter
from web.desk.errors import DeskRefusal

STATUSES = ("unresolved", "open", "acknowledged", "resolved", "all")
SENTIMENTS = ("negative", "neutral", "positive", "unclassified", "unlabelled")
ORDERS = ("newest", "oldest_open")
FLAGS = ("low_confidence", "overdue")
FREE = ("reason", "flow", "channel", "touchpoint")
PARAMS = ("status", *FREE, "sentiment", "assignee", "since", "until", *FLAGS, "order", "page")
DEFAULT_STATUS = "unresolved"  # the work still to do
MAX_VALUE = 200
MAX_PAGE = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,7}")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise DeskRefusal(400, f"Filter {name}={value!r} is not one of: {', '.join(allowed)}.")
    return value


def _day(name: str, value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DeskRefusal(400, f"Filter {name}={value!r} is not a date like 2026-11-30.") from None


def chosen_filters(params: Mapping[str, str]) -> dict[str, str]:
    """The filter parameters as given (stripped, known names only, default status filled in)."""
    chosen = {name: params.get(name, "").strip() for name in PARAMS}
    chosen["status"] = chosen["status"] or DEFAULT_STATUS
    chosen["order"] = chosen["order"] or "newest"
    chosen["page"] = chosen["page"] or "1"
    for name, value in chosen.items():
        if len(value) > MAX_VALUE:
            raise DeskRefusal(400, f"Filter {name} is longer than {MAX_VALUE} characters.")
    return chosen


def queue_filter(chosen: Mapping[str, str], *, me: str, per_page: int) -> QueueFilter:
    """The QueueFilter of `chosen_filters`; assignee "me" is `me` (the signed-in actor)."""
    status = _one_of("status", chosen["status"], STATUSES)
    sentiment = chosen["sentiment"]
    if sentiment:
        _one_of("sentiment", sentiment, SENTIMENTS)
    order = _one_of("order", chosen["order"], ORDERS)
    page_text = chosen["page"]
    # ASCII digits only: str.isdigit() is true of '²', which int() refuses.
    if not _DIGITS.fullmatch(page_text) or not 1 <= int(page_text) <= MAX_PAGE:
        raise DeskRefusal(400, f"Filter page={page_text!r} is not a page number.")
    since, until = _day("since", chosen["since"]), _day("until", chosen["until"])
    if since is not None and until is not None and since > until:
        raise DeskRefusal(400, f"Filter since={since} is after until={until}.")
    for name in FLAGS:
        if chosen[name] not in ("", "1"):
            raise DeskRefusal(400, f"Filter {name}={chosen[name]!r}: use 1, or leave it out.")
    assignee = chosen["assignee"]
    return QueueFilter(
        status=None if status == "all" else status,
        reason=chosen["reason"] or None,
        flow=chosen["flow"] or None,
        channel=chosen["channel"] or None,
        touchpoint=chosen["touchpoint"] or None,
        sentiment=sentiment or None,
        assignee=me if assignee == "me" else (assignee or None),
        since=since,
        until=until,
        low_confidence=chosen["low_confidence"] == "1",
        overdue=chosen["overdue"] == "1",
        order=order,
        page=int(page_text),
        per_page=per_page,
    )


def queue_link(chosen: Mapping[str, str], **changes: str) -> str:
    """The query string of the queue with `chosen` filters and `changes` (empty values left
    out, the page back to 1 unless it is what changes)."""
    values = {**chosen, "page": "1", **changes}
    defaults = {"page": "1", "order": "newest"}  # left out: shorter links, same queue
    return urlencode({k: v for k, v in values.items() if v and defaults.get(k) != v})
