"""Bot API calls with bounded retries, and python-telegram-bot errors as the project's own.

What Telegram answers, and what `call_api` does with it (the loop itself, and `RetryPolicy`,
are `adapters.retrying`'s, shared with Slack; `classify` is Telegram's part):

- 429 with `retry_after`: wait that long and try again; `RateLimitedError` when the attempts
  run out or the wait asked for is longer than the policy allows.
- 403 (blocked the bot, never started it, deactivated) and 400 "chat not found":
  `RecipientUnreachableError` at once — retrying cannot help.
- any other 400, 401/404 (a wrong token), 409: `DeliveryError` at once, for the same reason.
- 5xx, timeouts, network errors, an answer that is not JSON: retried with exponential backoff,
  then `DeliveryError`.

A send that timed out may still have reached Telegram, so a retry can deliver a message twice;
that is the price of not losing it.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from adapters.retrying import Failure, Retry, RetryPolicy, Sleep, call_with_retries
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError

T = TypeVar("T")

# Bad Request descriptions that mean "this chat cannot be messaged", not "your request is wrong".
_UNREACHABLE_400 = ("chat not found", "user is deactivated", "peer_id_invalid", "user not found")


def retry_after_seconds(exc: RetryAfter) -> float:
    """The pause Telegram asked for, whatever type this PTB version reports it as."""
    with warnings.catch_warnings():
        # PTB 22 warns that the attribute will become a timedelta; both forms are handled.
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def _unreachable(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _UNREACHABLE_400)


def classify(exc: Exception, what: str) -> Failure:
    """What a python-telegram-bot exception means for the retry loop (see the module doc)."""
    if isinstance(exc, RetryAfter):
        wait = retry_after_seconds(exc)
        return RateLimitedError(
            f"{what}: Telegram asks to wait {wait:g} s (rate limit)", retry_after=wait
        )
    if isinstance(exc, Forbidden):
        return RecipientUnreachableError(f"{what}: {exc.message}")
    if isinstance(exc, BadRequest):  # before TelegramError: BadRequest is a NetworkError in PTB
        if _unreachable(exc.message):
            return RecipientUnreachableError(f"{what}: {exc.message}")
        return DeliveryError(f"{what}: Telegram refused the request: {exc.message}")
    if isinstance(exc, InvalidToken):
        return DeliveryError(
            f"{what}: Telegram rejected the bot token ({exc.message}); "
            "check [telegram] token / CXBOT_TELEGRAM__TOKEN"
        )
    if isinstance(exc, Conflict | ChatMigrated):
        return DeliveryError(f"{what}: {exc.message}")
    if isinstance(exc, TelegramError):
        return Retry(exc.message)  # network errors, timeouts, 5xx and unreadable answers
    return None


async def call_api(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run one Bot API call (`operation` makes a fresh request each time) under `policy`.

    Raises `RecipientUnreachableError`, `RateLimitedError` or `DeliveryError`; `what` names the
    call in their messages ("sendMessage to 42").
    """
    return await call_with_retries(
        operation, what=what, policy=policy, classify=classify, sleep=sleep
    )
