"""`bot.reminder_policy`: when reminders fall due and surveys close, from `[reminders]`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import load_settings
from bot.quiet_hours import QuietHours
from bot.reminder_policy import ReminderPolicy, as_utc

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_defaults_are_one_reminder_after_a_day_and_expiry_after_three(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"CXBOT_GENERAL__DATA_DIR": str(tmp_path)})
    policy = ReminderPolicy.from_settings(settings)
    assert policy == ReminderPolicy(
        count=1, after=24 * H, spacing=24 * H, expire_after=72 * H, quiet=None, default_zone="UTC"
    )
    assert policy.active


def test_settings_reach_the_policy(tmp_path: Path) -> None:
    environ = {
        "CXBOT_GENERAL__DATA_DIR": str(tmp_path),
        "CXBOT_REMINDERS__COUNT": "0",
        "CXBOT_REMINDERS__AFTER_HOURS": "1.5",
        "CXBOT_REMINDERS__EXPIRE_AFTER_HOURS": "0",
        "CXBOT_INVITATIONS__QUIET_HOURS": "21:00-08:00",
        "CXBOT_INVITATIONS__DEFAULT_TIME_ZONE": "Europe/Madrid",
    }
    policy = ReminderPolicy.from_settings(load_settings(None, environ=environ))
    assert (policy.count, policy.after, policy.expire_after) == (0, 1.5 * H, None)
    assert policy.quiet == QuietHours.parse("21:00-08:00")
    assert policy.default_zone == "Europe/Madrid"
    assert not policy.active  # no reminders and nothing expires: serve runs no worker


def test_a_question_asked_is_reminded_after_the_silence_while_reminders_are_left() -> None:
    policy = ReminderPolicy(count=2, after=24 * H, spacing=6 * H, expire_after=72 * H)
    expires = policy.expires_at(T0)
    assert expires == T0 + 72 * H
    assert policy.after_question(T0, sent=0, expires_at=expires) == T0 + 24 * H
    assert policy.after_question(T0, sent=1, expires_at=expires) == T0 + 24 * H
    assert policy.after_question(T0, sent=2, expires_at=expires) is None  # all used
    # After a reminder the next one is `spacing` later, while any are left.
    assert policy.after_reminder(T0 + 24 * H, sent=1, expires_at=expires) == T0 + 30 * H
    assert policy.after_reminder(T0 + 30 * H, sent=2, expires_at=expires) is None


def test_no_reminder_is_due_at_or_after_the_expiry() -> None:
    policy = ReminderPolicy(count=3, after=24 * H, spacing=24 * H, expire_after=48 * H)
    expires = policy.expires_at(T0)
    assert policy.after_question(T0 + 23 * H, sent=0, expires_at=expires) == T0 + 47 * H
    assert policy.after_question(T0 + 24 * H, sent=0, expires_at=expires) is None
    never = ReminderPolicy(count=1, after=24 * H, expire_after=None)
    assert never.expires_at(T0) is None
    assert never.after_question(T0 + 1000 * H, sent=0, expires_at=None) == T0 + 1024 * H


def test_count_zero_means_no_reminders() -> None:
    policy = ReminderPolicy(count=0)
    assert policy.after_question(T0, sent=0, expires_at=policy.expires_at(T0)) is None
    assert policy.active  # surveys still expire


def test_quiet_hours_are_read_in_the_customers_zone() -> None:
    policy = ReminderPolicy(quiet=QuietHours.parse("21:00-08:00"), default_zone="Europe/Berlin")
    late_evening_in_new_york = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # 22:00 in New York
    assert policy.allowed_at(late_evening_in_new_york, time_zone="America/New_York") == (
        datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in New York
    )
    # 04:00 in Berlin (the default zone): quiet there too, until 08:00 Berlin time.
    assert policy.allowed_at(late_evening_in_new_york, time_zone=None) == datetime(
        2026, 3, 3, 7, 0, tzinfo=UTC
    )
    # An unknown zone stored for a customer falls back to the default one.
    assert policy.allowed_at(late_evening_in_new_york, time_zone="Mars/Olympus") == datetime(
        2026, 3, 3, 7, 0, tzinfo=UTC
    )
    noon = datetime(2026, 3, 3, 11, 0, tzinfo=UTC)
    assert policy.allowed_at(noon, time_zone="Europe/Berlin") == noon


def test_naive_times_from_sqlite_are_utc() -> None:
    assert as_utc(datetime(2026, 3, 2, 10, 0)) == T0
    policy = ReminderPolicy(count=1, after=24 * H, expire_after=72 * H)
    naive_expiry = datetime(2026, 3, 3, 9, 0)  # before T0 + 24 h
    assert policy.after_question(T0, sent=0, expires_at=naive_expiry) is None
