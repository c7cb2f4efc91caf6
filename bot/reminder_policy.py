"""When an open survey is reminded and when it closes: the arithmetic of `[reminders]`, pure.

- The bot asks a question (a new one, a hint after a reply it could not read, the question
  again): the next reminder is due `after_hours` later, if the survey has reminders left.
- A reminder went out: the next one is due `spacing_hours` later, if any are left.
- `count` is per survey: a customer who answers after a reminder and falls silent again is
  reminded again only while reminders are left.
- No reminder is due at or after the survey's expiry (`expire_after_hours` after its start):
  the survey closes then instead.
- A reminder due inside the quiet hours (`[invitations] quiet_hours`, read in the customer's
  time zone, else `[invitations] default_time_zone`) waits for their end (`bot.quiet_hours`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.errors import ConfigError
from bot.quiet_hours import QuietHours, next_allowed, zone_named


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is UTC already (SQLite keeps no zone)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    """`[reminders]` (and the quiet hours of `[invitations]`) as schedule arithmetic."""

    count: int = 1
    after: timedelta = timedelta(hours=24)
    spacing: timedelta = timedelta(hours=24)
    expire_after: timedelta | None = timedelta(hours=72)  # None: surveys never expire
    quiet: QuietHours | None = None
    default_zone: str = "UTC"

    @classmethod
    def from_settings(cls, settings: Settings) -> ReminderPolicy:
        """The policy the configuration asks for."""
        cfg = settings.reminders
        quiet = settings.invitations.quiet_hours  # "HH:MM-HH:MM", validated by the settings
        return cls(
            count=cfg.count,
            after=timedelta(hours=cfg.after_hours),
            spacing=timedelta(hours=cfg.spacing_hours),
            expire_after=(
                timedelta(hours=cfg.expire_after_hours) if cfg.expire_after_hours > 0 else None
            ),
            quiet=QuietHours.parse(quiet) if quiet else None,
            default_zone=settings.invitations.default_time_zone,
        )

    @property
    def active(self) -> bool:
        """Whether there is anything to do: reminders, or surveys that expire."""
        return self.count > 0 or self.expire_after is not None

    def expires_at(self, started: datetime) -> datetime | None:
        """When a survey started at `started` closes if unfinished (None: never)."""
        return None if self.expire_after is None else as_utc(started) + self.expire_after

    def after_question(
        self, now: datetime, *, sent: int, expires_at: datetime | None
    ) -> datetime | None:
        """The next reminder after the bot asked a question at `now`, `sent` reminders so far."""
        return self._within(as_utc(now) + self.after, sent, expires_at)

    def after_reminder(
        self, now: datetime, *, sent: int, expires_at: datetime | None
    ) -> datetime | None:
        """The next reminder after one went out at `now`, `sent` reminders so far (that one
        included)."""
        return self._within(as_utc(now) + self.spacing, sent, expires_at)

    def allowed_at(self, now: datetime, *, time_zone: str | None) -> datetime:
        """`now`, or the end of the quiet hours in the customer's zone if `now` is inside."""
        return next_allowed(as_utc(now), zone=self.zone(time_zone), quiet=self.quiet)

    def zone(self, name: str | None) -> ZoneInfo:
        """The customer's zone; the default one when theirs is unset or unknown here."""
        try:
            return zone_named(name, default=self.default_zone)
        except ConfigError:
            return zone_named(self.default_zone)

    def _within(self, at: datetime, sent: int, expires_at: datetime | None) -> datetime | None:
        if sent >= self.count:
            return None
        if expires_at is not None and at >= as_utc(expires_at):
            return None  # the survey closes first
        return at
