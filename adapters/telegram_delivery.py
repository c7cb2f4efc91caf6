"""Bot API calls with bounded retries, and python-telegram-bot errors as the project's own.

What Telegram answers, and what `call_api` does with it:

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
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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

from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# Bad Request descriptions that mean "this chat cannot be messaged", not "your request is wrong".
_UNREACHABLE_400 = ("chat not found", "user is deactivated", "peer_id_invalid", "user not found")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one Bot API call is tried before giving up."""

    attempts: int = 5  # tries in all, rate-limit waits included
    backoff: float = 0.5  # seconds before the first retry after a network error; doubles
    max_backoff: float = 8.0
    # A 429 asking for a longer pause than this is not waited out in line (a customer's turn
    # would hang): the call fails with RateLimitedError instead.
    max_retry_after: float = 120.0


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
    delay = policy.backoff
    for attempt in range(1, policy.attempts + 1):
        last = attempt >= policy.attempts
        try:
            return await operation()
        except RetryAfter as exc:
            wait = retry_after_seconds(exc)
            if last or wait > policy.max_retry_after:
                raise RateLimitedError(
                    f"{what}: Telegram asks to wait {wait:g} s (rate limit)", retry_after=wait
                ) from exc
            log.warning("%s: rate limited, waiting %g s as Telegram asks", what, wait)
            await sleep(wait)
        except Forbidden as exc:
            raise RecipientUnreachableError(f"{what}: {exc.message}") from exc
        except BadRequest as exc:  # before TelegramError: BadRequest is a NetworkError in PTB
            if _unreachable(exc.message):
                raise RecipientUnreachableError(f"{what}: {exc.message}") from exc
            raise DeliveryError(f"{what}: Telegram refused the request: {exc.message}") from exc
        except InvalidToken as exc:
            raise DeliveryError(
                f"{what}: Telegram rejected the bot token ({exc.message}); "
                "check [telegram] token / CXBOT_TELEGRAM__TOKEN"
            ) from exc
        except (Conflict, ChatMigrated) as exc:
            raise DeliveryError(f"{what}: {exc.message}") from exc
        except TelegramError as exc:
            # Network errors, timeouts, 5xx and unreadable answers: worth another try.
            if last:
                raise DeliveryError(
                    f"{what}: failed after {attempt} attempts: {exc.message}"
                ) from exc
            log.warning("%s: %s; retrying in %g s", what, exc.message, delay)
            await sleep(delay)
            delay = min(delay * 2, policy.max_backoff)
    raise AssertionError("RetryPolicy.attempts must be at least 1")
