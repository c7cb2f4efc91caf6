"""Slack Web API calls with bounded retries, and slack_sdk errors as the project's own.

What Slack answers, and what `call_slack` does with it (the loop itself, and `RetryPolicy`, are
`adapters.retrying`'s, shared with Telegram; `classify` is Slack's part):

- 429 (`ratelimited`) with a `Retry-After` header: wait that long and try again;
  `RateLimitedError` when the attempts run out or the wait is longer than the policy allows.
- errors that name the recipient (`not_in_channel`, `channel_not_found`, `account_inactive`,
  `user_not_found`, `is_archived`, `cannot_dm_bot`, …): `RecipientUnreachableError` at once.
- any other `ok: false` (`invalid_auth`, `invalid_blocks`, `missing_scope`, …): `DeliveryError`
  at once — retrying cannot help.
- 5xx, timeouts and network errors: retried with exponential backoff, then `DeliveryError`
  ("… failed after N attempts: Slack answered 503 (service_unavailable)").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.retrying import Failure, Retry, RetryPolicy, Sleep, call_with_retries
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError

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


def classify(exc: Exception, what: str) -> Failure:
    """What a slack_sdk (or aiohttp) exception means for the retry loop (see the module doc)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code if exc.response is not None else 0
        code = error_code(exc)
        if status == 429 or code == "ratelimited":
            wait = _retry_after(exc)
            return RateLimitedError(
                f"{what}: Slack asks to wait {wait:g} s (rate limit)", retry_after=wait
            )
        if code in UNREACHABLE_ERRORS:
            return RecipientUnreachableError(f"{what}: {code}")
        if status >= 500:
            return Retry(f"Slack answered {status} ({code})")
        return DeliveryError(f"{what}: Slack refused the request: {code}")
    if isinstance(exc, SlackClientError | aiohttp.ClientError | TimeoutError):
        return Retry(repr(exc))
    return None


async def call_slack(
    operation: Callable[[], Awaitable[AsyncSlackResponse]],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, Any]:
    """Run one Web API call (`operation` makes a fresh request each time) under `policy`.

    Returns the answer's JSON; raises `RecipientUnreachableError`, `RateLimitedError` or
    `DeliveryError`. `what` names the call in messages ("chat.postMessage to C123").
    """
    response = await call_with_retries(
        operation, what=what, policy=policy, classify=classify, sleep=sleep
    )
    data = response.data
    return dict(data) if isinstance(data, dict) else {}
