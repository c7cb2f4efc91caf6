"""One retry loop for every platform's API calls; each platform says what its errors mean.

`call_with_retries` runs an operation under a `RetryPolicy` and asks the platform's classifier
(`adapters.telegram_delivery.classify`, `adapters.slack_delivery.classify`) what each exception
means:

- a `RateLimitedError`: the platform asked for a pause (`retry_after`); it is waited out and the
  call tried again, unless the attempts ran out or the pause is longer than the policy allows —
  then that error is raised;
- `Retry`: worth another try (network error, timeout, 5xx) after a backoff that doubles up to
  `max_backoff`; once the attempts run out, `DeliveryError("… failed after N attempts: …")`;
- any other `DeliveryError` (`RecipientUnreachableError` included): raised at once, as
  retrying cannot help;
- None: not a platform error; it propagates as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.errors import DeliveryError, RateLimitedError

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one platform API call is tried before giving up."""

    attempts: int = 5  # tries in all, rate-limit waits included
    backoff: float = 0.5  # seconds before the first retry after a network error; doubles
    max_backoff: float = 8.0
    # A rate limit asking for a longer pause than this is not waited out in line (a customer's
    # turn would hang): the call fails with RateLimitedError instead.
    max_retry_after: float = 120.0


@dataclass(frozen=True, slots=True)
class Retry:
    """A failure worth another try after a backoff; `reason` goes in the log and the error."""

    reason: str


# What a platform's exception means: wait and retry, back off and retry, give up now, or
# (None) not a platform error at all.
Failure = RateLimitedError | Retry | DeliveryError | None
Classify = Callable[[Exception, str], Failure]


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
    classify: Classify,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run `operation` (a fresh request each time) under `policy`; see the module doc.

    `classify(exc, what)` maps the platform's exceptions; `what` names the call in messages
    ("sendMessage to 42", "chat.postMessage to C123").
    """
    if policy.attempts < 1:
        raise ValueError("RetryPolicy.attempts must be at least 1")
    delay = policy.backoff
    for attempt in range(1, policy.attempts + 1):
        last = attempt == policy.attempts
        try:
            return await operation()
        except Exception as exc:
            failure = classify(exc, what)
            if failure is None:
                raise
            if isinstance(failure, RateLimitedError):
                if last or failure.retry_after > policy.max_retry_after:
                    raise failure from exc
                log.warning("%s; waiting as asked", failure)
                await sleep(failure.retry_after)
                continue
            if isinstance(failure, DeliveryError):
                raise failure from exc
            if last:
                raise DeliveryError(
                    f"{what}: failed after {attempt} attempts: {failure.reason}"
                ) from exc
            log.warning("%s: %s; retrying in %g s", what, failure.reason, delay)
            await sleep(delay)
            delay = min(delay * 2, policy.max_backoff)
    raise AssertionError("unreachable: the last attempt returns or raises")
