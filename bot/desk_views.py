"""What the web desk shows: neutral, read-only views of review items, the queue and response
times. The bot layer fills them from storage; the web layer renders them. They hold no behaviour
beyond simple derived figures, so either side can build them in tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

# One review item as a line of the queue: storage builds it with exactly these fields.
from storage.desk_queue import QueueRow

__all__ = [
    "HistoryEntry",
    "ItemView",
    "QueueFilter",
    "QueuePage",
    "QueueRow",
    "ResponseTimes",
    "TextLabel",
    "TimelineEntry",
]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """One request for the review queue: the filters, the order and the page."""

    # open / acknowledged / resolved / "unresolved" (open + acknowledged) / None = all
    status: str | None = None
    reason: str | None = None  # a reason code (nps_detractor, negative_sentiment, ...)
    flow: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    sentiment: str | None = None  # negative / neutral / positive / unlabelled (a correction wins)
    assignee: str | None = None  # an actor string, or "none" for unassigned
    since: date | None = None  # created on or after (UTC day)
    until: date | None = None  # created on or before (UTC day)
    low_confidence: bool = False  # some text label below [desk] low_confidence_below (uncorrected)
    overdue: bool = False  # not acknowledged within the response target
    order: str = "newest"  # newest / oldest_open (open first, oldest first)
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the queue with the total, the per-facet counts and the values to offer."""

    rows: list[QueueRow]
    total: int
    page: int
    per_page: int
    # facet -> value -> count under the other filters: status, reason, channel, flow, sentiment,
    # touchpoint
    counts: dict[str, dict[str, int]]
    # values to offer in the filter selects: flows, channels, touchpoints, reasons, assignees
    facets: dict[str, list[str]]

    @property
    def pages(self) -> int:
        """How many pages the filtered queue has (at least 1, so "page 1 of 1" when empty)."""
        if self.per_page <= 0:
            return 1
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class TextLabel:
    """One free-text answer with the sentiment label shown (a correction wins over the model)."""

    answer_id: int
    text: str
    label: str | None
    confidence: float | None
    model_label: str | None
    model_id: str | None
    model_version: str | None
    corrected_by: str | None
    corrected_at: datetime | None
    low_confidence: bool


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One message of the conversation: from the customer, the bot or the support team."""

    when: datetime
    who: str  # "customer" / "bot" / "support"
    text: str
    question_id: str | None
    actor: str | None
    score: int | None
    label: TextLabel | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One action taken on a review item (acknowledged, assigned, resolved, ...)."""

    when: datetime
    action: str
    actor: str
    note: str | None


@dataclass(frozen=True, slots=True)
class ItemView:
    """Everything the item page shows about one review item."""

    id: int
    version: str  # opaque token of updated_at: forms send it back (double submits -> 409)
    status: str
    created_at: datetime
    assignee: str | None
    customer: str
    channel: str
    external_id: str
    unreachable: str | None
    flow_id: str
    flow_version: int
    touchpoint: str | None
    context: dict[str, Any]
    reasons: list[dict[str, Any]]
    scores: dict[str, int]
    timeline: list[TimelineEntry]
    texts: list[TextLabel]
    history: list[HistoryEntry]
    first_ack_at: datetime | None
    first_reply_at: datetime | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """Time to first acknowledgement and first reply over the last `days` days."""

    days: int
    acknowledged: int
    replied: int
    ack_p50: timedelta | None
    ack_p90: timedelta | None
    reply_p50: timedelta | None
    reply_p90: timedelta | None
