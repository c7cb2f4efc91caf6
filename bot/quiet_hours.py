"""Quiet hours: a daily window of the customer's own wall-clock time in which nothing is sent.

A window is written "21:00-08:00" (it may wrap past midnight) and read in the customer's IANA time
zone, so "no messages at night" stays true across daylight-saving changes: the next allowed moment
is computed on the local calendar and converted back, never by adding fixed hours to UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time window [start, end) in which no survey message is sent."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Read "HH:MM-HH:MM"; raise ConfigError naming the problem otherwise."""
        match = _WINDOW.match(text)
        if match is None:
            raise ConfigError(f"quiet hours {text!r}: expected HH:MM-HH:MM, e.g. 21:00-08:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ConfigError(f"quiet hours {text!r}: hours are 00-23 and minutes 00-59")
        if (h1, m1) == (h2, m2):
            raise ConfigError(f"quiet hours {text!r}: start and end are the same time")
        return cls(start=time(h1, m1), end=time(h2, m2))

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps past midnight

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def zone_named(name: str | None, *, default: str = "UTC") -> ZoneInfo:
    """The IANA zone `name`, or `default` when it is empty; ConfigError for an unknown name."""
    chosen = name or default
    try:
        return ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {chosen!r} (expected an IANA name such as Europe/Berlin)"
        ) from exc


def next_allowed(moment: datetime, *, zone: ZoneInfo, quiet: QuietHours | None) -> datetime:
    """`moment` if it is outside the quiet hours in `zone`, else the window's end (UTC).

    The end is taken on the local calendar ("08:00 the next morning") and resolved in the zone,
    so a DST change during the night moves the UTC instant, not the local hour. An end that falls
    into a spring-forward gap resolves to the first valid instant after it.
    """
    if moment.tzinfo is None:
        raise ValueError("next_allowed needs an aware datetime")
    if quiet is None:
        return moment
    local = moment.astimezone(zone)
    if not quiet.contains(local.timetz().replace(tzinfo=None)):
        return moment
    day = local.date()
    # Inside a wrapping window before midnight, the end is tomorrow's.
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)
    end_local = datetime.combine(day, quiet.end)
    return max(_first_instant_at_or_after(end_local, zone), moment.astimezone(UTC))


def _first_instant_at_or_after(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC instant whose local time in `zone` is `wall` or later.

    For an ordinary or repeated (fall-back) wall time that is its first occurrence. A wall time
    inside a spring-forward gap does not exist; the answer is then the end of the gap.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=1 maps to an instant before the transition; walk to the transition.
    candidate = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    step = timedelta(minutes=1)
    while candidate.astimezone(zone).replace(tzinfo=None) < wall:
        candidate += step
    return candidate
