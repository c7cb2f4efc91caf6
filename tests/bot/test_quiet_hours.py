"""Quiet hours in the customer's zone, across midnight and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.quiet_hours import QuietHours, next_allowed, zone_named

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours.parse("21:00-08:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_parse_reads_a_window_and_prints_it_back() -> None:
    assert QuietHours(start=time(21), end=time(8)) == NIGHT
    assert str(QuietHours.parse(" 9:30 - 17:05 ")) == "09:30-17:05"


@pytest.mark.parametrize("text", ["", "21-08", "25:00-08:00", "21:00-08:60", "08:00-08:00"])
def test_parse_refuses_bad_windows_with_a_message(text: str) -> None:
    with pytest.raises(ConfigError, match="quiet hours"):
        QuietHours.parse(text)


def test_outside_the_window_the_moment_stands() -> None:
    noon = utc(2026, 6, 1, 10, 0)  # 12:00 in Berlin (CEST)
    assert next_allowed(noon, zone=BERLIN, quiet=NIGHT) == noon
    assert next_allowed(noon, zone=BERLIN, quiet=None) == noon


def test_late_evening_moves_to_the_next_morning_local_time() -> None:
    evening = utc(2026, 6, 1, 20, 30)  # 22:30 CEST
    assert next_allowed(evening, zone=BERLIN, quiet=NIGHT) == utc(2026, 6, 2, 6, 0)  # 08:00 CEST


def test_early_morning_moves_to_the_same_mornings_end() -> None:
    early = utc(2026, 6, 2, 3, 0)  # 05:00 CEST
    assert next_allowed(early, zone=BERLIN, quiet=NIGHT) == utc(2026, 6, 2, 6, 0)


def test_the_same_instant_differs_by_zone() -> None:
    instant = utc(2026, 6, 1, 22, 0)  # midnight in Berlin, 18:00 in New York
    assert next_allowed(instant, zone=ZoneInfo("America/New_York"), quiet=NIGHT) == instant
    assert next_allowed(instant, zone=BERLIN, quiet=NIGHT) == utc(2026, 6, 2, 6, 0)


def test_spring_forward_night_keeps_eight_local() -> None:
    # Berlin goes from CET (+1) to CEST (+2) at 02:00 on 2026-03-29: 08:00 is 06:00 UTC, not 07:00.
    evening = utc(2026, 3, 28, 21, 0)  # 22:00 CET
    assert next_allowed(evening, zone=BERLIN, quiet=NIGHT) == utc(2026, 3, 29, 6, 0)


def test_fall_back_night_keeps_eight_local() -> None:
    # Back to CET at 03:00 CEST on 2026-10-25: 08:00 is then 07:00 UTC.
    evening = utc(2026, 10, 24, 20, 0)  # 22:00 CEST
    assert next_allowed(evening, zone=BERLIN, quiet=NIGHT) == utc(2026, 10, 25, 7, 0)


def test_a_window_ending_in_the_spring_gap_ends_when_the_gap_does() -> None:
    window = QuietHours.parse("01:00-02:30")  # 02:30 does not exist in Berlin on 2026-03-29
    inside = utc(2026, 3, 29, 0, 15)  # 01:15 CET
    assert next_allowed(inside, zone=BERLIN, quiet=window) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST


def test_zone_named_falls_back_and_refuses_unknown_names() -> None:
    assert zone_named(None, default="Europe/Berlin") == BERLIN
    assert zone_named("America/New_York") == ZoneInfo("America/New_York")
    with pytest.raises(ConfigError, match="unknown time zone"):
        zone_named("Mars/Olympus")


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2026, 6, 1, 12), zone=BERLIN, quiet=NIGHT)
