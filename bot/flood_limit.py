"""The per-customer flood limit on inbox-fed channels (Telegram, Slack).

A customer who sends more than `[survey] rate_limit_messages` messages in one window of
`rate_limit_seconds` gets ONE polite notice, and their further messages in that window are not
processed as turns (the inbox rows are marked processed: recorded, ignored). Everyone else is
served normally.

Nothing is counted in memory: the count is derived from the inbox rows themselves, the customer's
lane, in fixed windows (aligned on the epoch) of the time each update *arrived*, up to the row
being processed. So every process sharing the database reaches the same verdict for the same
update, a restart forgets nothing, and a backlog processed late is judged by when it came in.
Exactly one update per window is the first over the limit, which is why the notice is sent once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.config import Settings
from storage import inbox as inbox_q
from storage.database import Session

__all__ = ["FloodLimit", "Verdict"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Verdict(StrEnum):
    """What to do with one update of a customer's lane."""

    SERVE = "serve"  # within the limit: a turn as usual
    NOTICE = "notice"  # the first over the limit in its window: the one polite notice
    IGNORE = "ignore"  # further over the limit: recorded, not processed


@dataclass(frozen=True, slots=True)
class FloodLimit:
    """At most `messages` updates per customer per window of `seconds` (0 messages: no limit)."""

    messages: int
    seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> FloodLimit:
        """The limit configured in `[survey]`."""
        survey = settings.survey
        return cls(messages=survey.rate_limit_messages, seconds=survey.rate_limit_seconds)

    def window_start(self, received_at: datetime) -> datetime:
        """The start of the fixed window `received_at` falls in."""
        if received_at.tzinfo is None:  # SQLite gives back naive UTC
            received_at = received_at.replace(tzinfo=UTC)
        elapsed = int((received_at - _EPOCH).total_seconds())
        return _EPOCH + timedelta(seconds=elapsed - elapsed % self.seconds)

    def counting_from(self, now: datetime) -> datetime | None:
        """What the inbox claim should count from (`storage.inbox.take_next_update`): the
        current window's start, so an update that arrived in it needs no count of its own;
        None without a limit."""
        return self.window_start(now) if self.messages else None

    def verdict(self, session: Session, row: inbox_q.ClaimedUpdate) -> Verdict:
        """Whether the claimed update is served, the one notice, or ignored."""
        if self.messages == 0 or row.received_at is None:
            return Verdict.SERVE
        since = self.window_start(row.received_at)
        if row.recent is not None and row.counted_since == since:
            count = row.recent  # counted by the claim: the update arrived in the current window
        else:  # a backlog from an earlier window, or not counted: count its own window
            count = inbox_q.lane_updates_since(session, lane=row.lane, since=since, up_to_id=row.id)
        if count <= self.messages:
            return Verdict.SERVE
        return Verdict.NOTICE if count == self.messages + 1 else Verdict.IGNORE
