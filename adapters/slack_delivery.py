"""Slack Web API calls with bounded retries, and slack_sdk errors as the project's own.

What Slack answers, and what `call_slack` does with it:

- 429 (`ratelimited`) with a `Retry-After` header: wait that long and try again;
  `RateLimitedError` when the attempts run out or the wait is longer than the policy allows.
- errors that name the recipient (`not_in_channel`, `channel_not_found`, `account_inactive`,
  `user_not_found`, `is_archived`, `cannot_dm_bot`, …): `RecipientUnreachableError` at once.
- any other `ok: false` (`invalid_auth`, `invalid_blocks`, `missing_scope`, …): `DeliveryError`
  at once — retrying cannot help.
- 5xx, timeouts and network errors: retried with exponential backoff, then `DeliveryError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

# Error codes meaning "this conversation or person cannot be written to", not "bad request".
UNREACHABLE_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "account_inactive",
        "user_not_found",
        "user_disabled",
        "users_not_found",
        "is_archived",
        "cannot_dm_bot",
        "messages_tab_disabled",
        "restricted_action",
    }
)


@dataclass(frozen=True, slots=True)
class SlackRetryPolicy:
    """How hard one Web API call is tried before giving up."""

    attempts: int = 5  # tries in all, rate-limit waits included
    backoff: float = 0.5  # seconds before the first retry after a network error; doubles
    max_backoff: float = 8.0
    # A 429 asking for a longer pause is not waited out in line: RateLimitedError instead.
    max_retry_after: float = 120.0


def error_code(exc: SlackApiError) -> str:
    """Slack's error code (`not_in_channel`…) from a failed call."""
    data = exc.response.data if exc.response is not None else None
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return "unknown_error"


def _retry_after(exc: SlackApiError) -> float:
    headers = exc.response.headers if exc.response is not None else {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(float(value if isinstance(value, str) else value[0]), 0.0)
            except (TypeError, ValueError, IndexError):
                break
    return 1.0  # Slack always sends the header; be modest if a proxy dropped it


async def call_slack(
    operation: Callable[[], Awaitable[AsyncSlackResponse]],
    *,
    what: str,
    policy: SlackRetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """Run one Web API call (`operation` makes a fresh request each time) under `policy`.

    Returns the answer's JSON; raises `RecipientUnreachableError`, `RateLimitedError` or
    `DeliveryError`. `what` names the call in messages ("chat.postMessage to C123").
    """
    delay = policy.backoff
    for attempt in range(1, policy.attempts + 1):
        last = attempt >= policy.attempts
        try:
            response = await operation()
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            code = error_code(exc)
            if status == 429 or code == "ratelimited":
                wait = _retry_after(exc)
                if last or wait > policy.max_retry_after:
                    raise RateLimitedError(
                        f"{what}: Slack asks to wait {wait:g} s (rate limit)", retry_after=wait
                    ) from exc
                log.warning("%s: rate limited, waiting %g s as Slack asks", what, wait)
                await sleep(wait)
                continue
            if code in UNREACHABLE_ERRORS:
                raise RecipientUnreachableError(f"{what}: {code}") from exc
            if status >= 500 and not last:
                log.warning("%s: Slack answered %d; retrying in %g s", what, status, delay)
                await sleep(delay)
                delay = min(delay * 2, policy.max_backoff)
                continue
            raise DeliveryError(f"{what}: Slack refused the request: {code}") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            if last:
                raise DeliveryError(f"{what}: failed after {attempt} attempts: {exc!r}") from exc
            log.warning("%s: %r; retrying in %g s", what, exc, delay)
            await sleep(delay)
            delay = min(delay * 2, policy.max_backoff)
            continue
        data = response.data
        return dict(data) if isinstance(data, dict) else {}
    raise AssertionError("SlackRetryPolicy.attempts must be at least 1")
