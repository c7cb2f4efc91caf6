"""The reminder worker of `cxbot serve`: reminds open surveys left unanswered and closes those
whose time is up.

Turns schedule the work (`bot.engine`, with `bot.reminder_policy`): a survey started on Telegram
or Slack gets `expires_at`, and each question the bot asks sets `remind_at`. This worker takes
due surveys one at a time, ONE transaction each (`storage.reminders.claim_due_survey`:
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several processes never take the same survey; the
single writer on SQLite), and in that transaction decides and records everything:

- expiry due: the survey becomes expired. Nothing is sent; the customer's next reply hears
  "this survey has closed" and is kept as a late comment (`bot.survey_machine`, EXPIRED).
- reminder due: inside the customer's quiet hours it moves to their end (or is dropped when the
  survey closes first); an unreachable customer gets none; otherwise the open question is
  queued again, same text and buttons, led by "Reminder:" (`Engine.reminder_message`; outbox
  purpose `reminder`), counted, and the next reminder scheduled.

The reminder row, its count and the next due time commit together, so a process killed at any
moment decides each reminder at most once and loses no expiry: work not committed is found due
again and done then. (Sending has the outbox's own window for a repeat, `bot.delivery`.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.config import Settings
from bot.engine import Engine
from bot.reminder_policy import ReminderPolicy, as_utc
from bot.turn_outbox import enqueue_message
from storage import reminders as remind_q
from storage.database import Database, Session, transaction
from storage.tables import Conversation, Customer, utcnow

log = logging.getLogger(__name__)

REMINDER_PURPOSE = "reminder"  # outbox purpose of reminders (delivery failures name it)
# A survey whose reminder could not be built (a bug, a broken stored flow) is tried again
# this much later rather than at every pass.
RETRY_AFTER = timedelta(hours=1)


class Outcome(StrEnum):
    """What the worker did with one due survey."""

    REMINDED = "reminded"  # the reminder was queued in the outbox
    EXPIRED = "expired"  # the survey closed
    POSTPONED = "postponed"  # quiet hours: the reminder waits for their end
    DROPPED = "dropped"  # no reminder after all (the survey closes first, unreachable customer)
    FAILED = "failed"  # building the reminder failed; tried again after RETRY_AFTER


@dataclass(frozen=True, slots=True)
class Handled:
    """One due survey and what became of it."""

    conversation_id: int
    outcome: Outcome


class ReminderWorker:
    """Reminds and expires the due surveys of `channels` until cancelled (`run`).

    `clock` says what time it is (tests inject theirs); `on_queued` is called after a pass that
    queued reminders (serve wakes the delivery worker).
    """

    def __init__(
        self,
        *,
        db: Database,
        engine: Engine,
        policy: ReminderPolicy,
        channels: Sequence[str],
        clock: Callable[[], datetime] = utcnow,
        batch: int = 100,
        poll_seconds: float = 60.0,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._engine = engine
        self._policy = policy
        self._channels = tuple(channels)
        self._clock = clock
        self._batch = max(1, batch)
        self._poll = poll_seconds
        self._on_queued = on_queued

    async def run(self) -> None:
        """Handle due surveys every `poll_seconds` (at once again after a full batch)."""
        while True:
            try:
                handled = await asyncio.to_thread(self.run_due)
            except Exception:
                # The database failed: keep serving and look again after a pause. Nothing
                # half-done is left behind: each survey's transaction committed or not at all.
                log.exception("due reminders could not be read or written; retrying shortly")
                handled = []
            if self._on_queued is not None and any(h.outcome == Outcome.REMINDED for h in handled):
                self._on_queued()
            if len(handled) < self._batch:
                await asyncio.sleep(self._poll)

    def run_due(self) -> list[Handled]:
        """One pass: up to `batch` due surveys, one transaction each; what was done."""
        handled: list[Handled] = []
        now = as_utc(self._clock())
        for _ in range(self._batch):
            done = self._handle_one(now)
            if done is None:
                break
            handled.append(done)
        return handled

    def _handle_one(self, now: datetime) -> Handled | None:
        claimed_id: int | None = None
        try:
            with transaction(self._db) as session:
                claimed = remind_q.claim_due_survey(session, channels=self._channels, now=now)
                if claimed is None:
                    return None
                conversation, customer = claimed
                claimed_id = conversation.id
                assert claimed_id is not None
                return Handled(claimed_id, self._decide(session, conversation, customer, now))
        except Exception:
            if claimed_id is None:
                raise  # the claim itself failed: the database, not this survey
            log.exception("survey %d: the reminder could not be queued; trying later", claimed_id)
        with transaction(self._db) as session:
            remind_q.postpone_reminder_of(
                session, conversation_id=claimed_id, remind_at=now + RETRY_AFTER
            )
        return Handled(claimed_id, Outcome.FAILED)

    def _decide(
        self, session: Session, conversation: Conversation, customer: Customer, now: datetime
    ) -> Outcome:
        """Everything about one due survey, inside its transaction."""
        expires_at = as_utc(conversation.expires_at) if conversation.expires_at else None
        if expires_at is not None and expires_at <= now:
            remind_q.expire_conversation(session, conversation=conversation, now=now)
            return Outcome.EXPIRED
        if conversation.reminders_sent >= self._policy.count:
            # Scheduled under an older `[reminders] count`: the one in force says no more.
            remind_q.postpone_reminder(session, conversation=conversation, remind_at=None)
            return Outcome.DROPPED
        if customer.unreachable_at is not None:
            # They blocked the bot: nothing can reach them. Their next message opens the
            # survey to them again (`bot.engine`), and its questions schedule reminders anew.
            remind_q.postpone_reminder(session, conversation=conversation, remind_at=None)
            return Outcome.DROPPED
        allowed = self._policy.allowed_at(now, time_zone=customer.time_zone)
        if allowed > now:
            later = allowed if expires_at is None or allowed < expires_at else None
            remind_q.postpone_reminder(session, conversation=conversation, remind_at=later)
            return Outcome.POSTPONED if later is not None else Outcome.DROPPED
        message = self._engine.reminder_message(
            session, conversation=conversation, customer=customer
        )
        if message is None:
            remind_q.postpone_reminder(session, conversation=conversation, remind_at=None)
            return Outcome.DROPPED
        enqueue_message(session, message, purpose=REMINDER_PURPOSE)
        sent = conversation.reminders_sent + 1
        next_at = self._policy.after_reminder(now, sent=sent, expires_at=expires_at)
        remind_q.record_reminder(session, conversation=conversation, next_at=next_at)
        return Outcome.REMINDED


def build_reminder_worker(
    *,
    settings: Settings,
    db: Database,
    engine: Engine,
    channels: Sequence[str],
    on_queued: Callable[[], None] | None = None,
) -> ReminderWorker | None:
    """The worker `cxbot serve` runs for `channels`; None when `[reminders]` turns both
    reminders and expiry off."""
    policy = ReminderPolicy.from_settings(settings)
    if not policy.active or not channels:
        return None
    return ReminderWorker(
        db=db,
        engine=engine,
        policy=policy,
        channels=channels,
        batch=settings.reminders.batch_size,
        poll_seconds=settings.reminders.poll_seconds,
        on_queued=on_queued,
    )
