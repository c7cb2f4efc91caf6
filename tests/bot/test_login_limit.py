"""Failed sign-ins limited per key in a sliding window, in bounded memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.login_limit import LoginLimiter


class Ticks:
    """A monotonic clock in seconds that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


IP, ANA, BOB = "ip:203.0.113.7", "email:ana@example.com", "email:bob@example.com"


def test_the_attempt_after_the_limit_waits_until_the_oldest_failure_leaves_the_window() -> None:
    clock = Ticks()
    limiter = LoginLimiter(3, timedelta(minutes=1), clock)
    for step in (0, 10, 20):
        assert limiter.blocked([IP, ANA]) is None
        clock.now = 1000 + step
        limiter.failed([IP, ANA])
    assert limiter.blocked([IP, ANA]) == pytest.approx(40.0)
    clock.now = 1059.5
    assert limiter.blocked([ANA]) == pytest.approx(0.5)
    clock.now = 1060
    assert limiter.blocked([IP, ANA]) is None
    # Sliding, not fixed: the failures at +10 and +20 still count, so one more blocks again
    # until +10 leaves the window.
    limiter.failed([IP, ANA])
    assert limiter.blocked([IP]) == pytest.approx(10.0)


def test_any_key_over_the_limit_blocks_and_the_longest_wait_is_given() -> None:
    clock = Ticks()
    limiter = LoginLimiter(2, timedelta(seconds=100), clock)
    limiter.failed([IP, ANA])
    clock.now += 30
    limiter.failed([IP, BOB])
    # The address guessed twice (two accounts); each account was guessed once.
    assert limiter.blocked([ANA]) is None and limiter.blocked([BOB]) is None
    assert limiter.blocked([IP, BOB]) == pytest.approx(70.0)
    clock.now += 10
    limiter.failed(["ip:198.51.100.1", BOB])
    assert limiter.blocked(["ip:198.51.100.1", BOB]) == pytest.approx(90.0)
    assert limiter.blocked(["ip:192.0.2.9", ANA]) is None


def test_a_success_forgets_only_the_keys_it_names() -> None:
    clock = Ticks()
    limiter = LoginLimiter(2, timedelta(minutes=15), clock)
    limiter.failed([IP, ANA])
    limiter.failed([IP, ANA])
    assert limiter.blocked([ANA]) is not None and limiter.blocked([IP]) is not None
    limiter.succeeded([ANA])
    assert limiter.blocked([ANA]) is None
    assert limiter.blocked([IP]) == pytest.approx(900.0)
    limiter.succeeded(["email:never-seen@example.com"])
    assert len(limiter) == 1


def test_memory_stays_bounded_by_keys_and_by_time() -> None:
    clock = Ticks()
    limiter = LoginLimiter(5, timedelta(minutes=1), clock, max_keys=100)
    for n in range(1000):
        limiter.failed([f"ip:10.0.{n // 256}.{n % 256}"])
    assert len(limiter) == 100
    # The most recent keys are the ones kept.
    limiter.failed(["ip:10.0.3.231"] * 4)
    assert limiter.blocked(["ip:10.0.3.231"]) == pytest.approx(60.0)
    clock.now += 61
    limiter.failed([ANA])
    # Keys whose failures all left the window are dropped at the next failure.
    assert len(limiter) == 1 and limiter.blocked(["ip:10.0.3.231"]) is None


def test_a_limit_must_allow_an_attempt_in_a_real_window() -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        LoginLimiter(0, timedelta(minutes=1))
    with pytest.raises(ValueError, match="window must be positive"):
        LoginLimiter(5, timedelta(0))
