"""The retry loop both platforms share: what a classifier's verdict makes it do, and the waits.

No SDK here: the operation raises plain exceptions and a toy classifier says what they mean
(the platforms' own classifiers are tested through their fakes in test_telegram_delivery.py and
test_slack_translate.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from adapters.retrying import Failure, Retry, RetryPolicy, call_with_retries
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError


class Slow(Exception):
    """Asks for a pause of `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


def classify(exc: Exception, what: str) -> Failure:
    if isinstance(exc, Slow):
        return RateLimitedError(f"{what}: wait {exc.seconds:g} s", retry_after=exc.seconds)
    if isinstance(exc, ConnectionError):
        return Retry(f"network: {exc}")
    if isinstance(exc, PermissionError):
        return RecipientUnreachableError(f"{what}: blocked")
    if isinstance(exc, ValueError):
        return DeliveryError(f"{what}: refused")
    return None


def failing(*errors: Exception) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """An operation that raises `errors` one per call, then answers "ok"; and its call count."""
    calls = [0]

    async def operation() -> str:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return "ok"

    return operation, calls


POLICY = RetryPolicy(attempts=4, backoff=0.5, max_backoff=1.5, max_retry_after=10.0)


async def run(operation: Callable[[], Awaitable[str]], slept: list[float]) -> str:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return await call_with_retries(
        operation, what="send", policy=POLICY, classify=classify, sleep=sleep
    )


async def test_transient_failures_back_off_doubling_up_to_the_cap() -> None:
    slept: list[float] = []
    operation, calls = failing(ConnectionError("a"), ConnectionError("b"), ConnectionError("c"))
    assert await run(operation, slept) == "ok"
    assert calls[0] == 4 and slept == [0.5, 1.0, 1.5]


async def test_transient_failures_give_up_after_the_attempts() -> None:
    slept: list[float] = []
    operation, calls = failing(*(ConnectionError(str(n)) for n in range(4)))
    with pytest.raises(DeliveryError, match=r"^send: failed after 4 attempts: network: 3$") as err:
        await run(operation, slept)
    assert isinstance(err.value.__cause__, ConnectionError)
    assert calls[0] == 4 and slept == [0.5, 1.0, 1.5]


async def test_rate_limits_are_waited_out_as_asked_and_count_as_attempts() -> None:
    slept: list[float] = []
    operation, calls = failing(Slow(3), ConnectionError("x"), Slow(2))
    assert await run(operation, slept) == "ok"
    assert slept == [3, 0.5, 2]  # the backoff is not doubled by a rate limit
    operation, calls = failing(*(Slow(1) for _ in range(4)))
    with pytest.raises(RateLimitedError) as raised:
        await run(operation, slept)
    assert raised.value.retry_after == 1 and calls[0] == 4


async def test_a_pause_longer_than_the_policy_allows_is_not_waited() -> None:
    slept: list[float] = []
    operation, calls = failing(Slow(60))
    with pytest.raises(RateLimitedError, match="wait 60 s"):
        await run(operation, slept)
    assert calls[0] == 1 and slept == []


@pytest.mark.parametrize(
    ("error", "raised"),
    [(PermissionError(), RecipientUnreachableError), (ValueError(), DeliveryError)],
)
async def test_final_errors_are_raised_at_once(
    error: Exception, raised: type[DeliveryError]
) -> None:
    slept: list[float] = []
    operation, calls = failing(error)
    with pytest.raises(raised) as err:
        await run(operation, slept)
    assert type(err.value) is raised and err.value.__cause__ is error
    assert calls[0] == 1 and slept == []


async def test_what_the_classifier_does_not_know_propagates_as_it_is() -> None:
    slept: list[float] = []
    operation, calls = failing(KeyError("bug"))
    with pytest.raises(KeyError):
        await run(operation, slept)
    assert calls[0] == 1


async def test_a_policy_without_attempts_is_refused() -> None:
    operation, calls = failing()
    with pytest.raises(ValueError, match="at least 1"):
        await call_with_retries(
            operation, what="send", policy=RetryPolicy(attempts=0), classify=classify
        )
    assert calls[0] == 0
