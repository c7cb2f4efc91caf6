"""Sending again the survey questions that did not reach their customers.

When a platform refuses a reply after the adapter's own retries (a long rate limit, a 5xx), the
turn is already stored and a redelivery of the same update would be ignored as a duplicate. The
engine then marks the survey undelivered (`Engine.undelivered`); this loop, run by `cxbot serve`,
sends the current question again with a word of apology: first after a minute, then with
doubling waits (`bot.engine.redelivery_wait`). A customer who writes first gets it at once.

Several processes may run the loop: each claims due surveys in the database before sending, so
one question is sent by one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine as DbEngine

from bot.engine import Engine
from bot.errors import DeliveryError, RecipientUnreachableError
from bot.messages import OutgoingMessage
from storage import conversations as conv_q
from storage.database import transaction

log = logging.getLogger(__name__)

Deliver = Callable[[str, Sequence[OutgoingMessage]], Awaitable[None]]
BATCH = 50
# A claimed survey is left alone this long by other processes (a crash mid-send: tried again).
CLAIM_HOLD = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RedeliveryResult:
    """What one pass did: questions sent again, and attempts that failed."""

    sent: int = 0
    failed: int = 0


class Redelivery:
    """Background resend of undelivered survey questions (`run` until cancelled)."""

    def __init__(
        self,
        *,
        db: DbEngine,
        engine: Engine,
        deliver: Deliver,
        channels: Sequence[str],
        poll_seconds: float = 15.0,
    ) -> None:
        self._db = db
        self._engine = engine
        self._deliver = deliver
        self._channels = tuple(channels)  # those this process runs; others are left alone
        self._poll = poll_seconds

    async def run(self) -> None:
        """Send due questions every `poll_seconds` until cancelled."""
        while True:
            await self.redeliver_due()
            await asyncio.sleep(self._poll)

    async def redeliver_due(self, now: datetime | None = None) -> RedeliveryResult:
        """Send every question whose resend is due (claimed in batches)."""
        sent = failed = 0
        while True:
            moment = now or datetime.now(UTC)
            due = await asyncio.to_thread(self._claim, moment)
            for channel, user_id in due:
                if await self._resend(channel, user_id, moment):
                    sent += 1
                else:
                    failed += 1
            if len(due) < BATCH:
                return RedeliveryResult(sent, failed)

    def _claim(self, now: datetime) -> list[tuple[str, str]]:
        with transaction(self._db) as session:
            return conv_q.claim_redeliveries(
                session,
                channels=self._channels,
                now=now,
                hold_until=now + CLAIM_HOLD,
                limit=BATCH,
            )

    async def _resend(self, channel: str, user_id: str, now: datetime) -> bool:
        messages = await self._engine.redelivery(channel=channel, user_id=user_id)
        if not messages:
            return True  # they wrote meanwhile and have the question
        try:
            await self._deliver(channel, messages)
        except DeliveryError as exc:
            unreachable = isinstance(exc, RecipientUnreachableError)
            log.warning("sending the current question to %s again failed: %s", user_id, exc)
            await self._engine.redelivered(
                channel=channel, user_id=user_id, error=str(exc), unreachable=unreachable, now=now
            )
            return False
        log.info("sent the current question to %s customer %s again", channel, user_id)
        await self._engine.redelivered(channel=channel, user_id=user_id, error=None)
        return True
