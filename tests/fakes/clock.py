"""A clock that tests move by hand: `clock()` is now, `clock.advance(hours=25)` moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Aware UTC time that only moves when told to (reminders, expiry, quiet hours)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move on by `timedelta(**delta)`; the new time."""
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        """Jump to `moment` (aware)."""
        self.now = moment
        return self.now
