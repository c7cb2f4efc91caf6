"""The inbox: platform updates are recorded before they are acknowledged, then processed.

Adapters hand raw updates to `Inbox.record` (one statement for a whole batch, committed) and tell
the platform they arrived only after it returned: Telegram's next getUpdates, the webhook's 200,
Slack's HTTP answer or Socket Mode ack. `InboxWorker` then processes them in ONE transaction
that claims them and marks them processed (one statement), and runs their turns
(`Engine.turn_in`, which writes its replies to the outbox) — so after a SIGKILL an update is
either wholly handled or still waiting (the mark is rolled back with the rest), never half-done
and never lost.

Group commit: under load the worker takes the heads of up to `batch` lanes in that statement
and runs their turns one after the other in the same transaction, so BEGIN, the claim, COMMIT
and the hop to a worker thread are paid once for all of them (each turn stays atomic: they
commit together or not at all). A turn that raises rolls the whole group back; its failure is
recorded (it waits for its retry time) and the worker takes the others again one at a time,
so the failing update is counted and retried alone while the others go through. Idle, a group
is one update: nothing waits for company.

Order: one lane (one customer's chat) is processed one update at a time in arrival order, by
whichever process claims it (`storage.inbox.take_next_update`); lanes run concurrently.

Translation from the platform's JSON to what the engine sees happens here, once, with the
adapter's pure `translate` function for that channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.engine import Engine
from bot.flood_limit import FloodLimit, Verdict
from bot.messages import (
    Ignored,
    Inbound,
    IncomingMessage,
    Notice,
    RawUpdate,
    RecordUpdates,
    Unreachable,
)
from bot.texts import bot_text
from bot.turn_outbox import enqueue_notice
from bot.waiting import wait_for_event
from storage import customers as cust_q
from storage import inbox as inbox_q
from storage.database import Database, Session, transaction
from storage.inbox import ClaimedUpdate, NewUpdate
from storage.tables import utcnow

log = logging.getLogger(__name__)

Translator = Callable[[Mapping[str, Any]], Inbound]
# A failing update is tried again after 1, 2, 4, 8 s, then given up (kept with its error).
MAX_ATTEMPTS = 5
# Updates (of different lanes) whose turns share one transaction, at most (see the module doc).
BATCH = 16


class Inbox:
    """Where adapters record updates before acknowledging them; wakes the worker."""

    def __init__(self, *, db: Database) -> None:
        self._db = db
        self._listeners: list[Callable[[int], None]] = []

    def on_recorded(self, listener: Callable[[int], None]) -> None:
        """Call `listener(new)` (in the event loop) after each batch recorded, with how many
        of its updates were new."""
        self._listeners.append(listener)

    async def record(self, channel: str, updates: Sequence[RawUpdate]) -> int:
        """Record updates durably (duplicates ignored); how many were new."""
        if not updates:
            return 0
        rows = [NewUpdate(event_key=u.event_key, lane=u.lane, body=u.body) for u in updates]
        new = await asyncio.to_thread(self._record, channel, rows)
        for listener in self._listeners if new else ():
            listener(new)
        return new

    def recorder(self, channel: str) -> RecordUpdates:
        """`record` for one channel, as its adapter calls it."""

        def record(updates: Sequence[RawUpdate]) -> Awaitable[int]:
            return self.record(channel, updates)

        return record

    def _record(self, channel: str, updates: Sequence[NewUpdate]) -> int:
        return inbox_q.record_updates_now(self._db, channel=channel, updates=updates)


@dataclass(frozen=True, slots=True)
class Processed:
    """One update processed: whether a turn stored text, and whether it sent anything."""

    update_id: int
    queued: bool
    stored_text: bool = False


class InboxWorker:
    """Processes recorded updates until cancelled (`run`): `concurrency` loops (one by default:
    a loop takes a group of up to `batch` lanes' updates at once, and a second loop would only
    split the groups; several processes share the work on PostgreSQL), each group in one
    transaction (see the module doc)."""

    def __init__(
        self,
        *,
        db: Database,
        engine: Engine,
        translators: Mapping[str, Translator],
        on_queued: Callable[[], None] | None = None,
        concurrency: int = 1,
        poll_seconds: float = 1.0,
        flood_limit: FloodLimit | None = None,
        batch: int = BATCH,
    ) -> None:
        self._db = db
        self._engine = engine
        # One customer's flood is cut off here, before it costs a turn (`bot.flood_limit`).
        self._flood = flood_limit or FloodLimit.from_settings(engine.settings)
        self._translators = dict(translators)
        self._on_queued = on_queued
        # SQLite has one writer: a second loop would only queue on its lock.
        self._concurrency = 1 if db.dialect.name == "sqlite" else max(1, concurrency)
        self._batch = max(1, batch)
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        # Updates announced by `nudge` and not yet looked for: each loop looks once per
        # announced update, instead of every loop looking after every update (on PostgreSQL
        # four loops made five claims per update, four of them finding nothing).
        self._announced = 0
        # Looks that found nothing (the update's lane was busy with an earlier one, or another
        # process took it): the next loop that finishes an update looks again once for each
        # (`_relooks`). A look again that finds nothing is not a miss of its own: else every
        # group would be followed by a look finding nothing, for ever.
        self._missed = 0
        self._relooks = 0

    def nudge(self, count: int = 1) -> None:
        """`count` updates were recorded: look now rather than at the next poll."""
        self._announced += count
        self._wake.set()

    async def run(self) -> None:
        """Process updates until cancelled."""
        await asyncio.gather(*(self._loop() for _ in range(self._concurrency)))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        look_by = loop.time()  # what was recorded before this process started
        while True:
            if loop.time() >= look_by:
                # Every poll interval, however busy: look for what nobody announced (another
                # process's updates, a failed update whose retry time came, a missed look).
                self._missed = self._relooks = 0
                await self._drain()
                look_by = loop.time() + self._poll
            elif self._announced > 0 or self._relooks > 0:
                relook = self._announced == 0  # what was announced goes first
                if relook:
                    self._relooks -= 1
                else:
                    self._announced -= 1
                taken = await self.process_some()
                if taken == 0:
                    self._missed += 0 if relook else 1
                else:  # the others it took were announced too: one look fewer for each
                    self._announced = max(0, self._announced - (taken - 1))
            elif (
                await wait_for_event(self._wake, look_by - loop.time())
                and not self._announced
                and not self._relooks
            ):
                self._wake.clear()  # another loop took what was announced

    async def _drain(self) -> None:
        took = False
        while taken := await self.process_some():
            took = True
            # Under load a drain takes the announced updates too: each it takes is one look
            # fewer to make (else every one of them would later cost a claim finding nothing).
            self._announced = max(0, self._announced - taken)
        if took:  # the last look may have missed a lane held by another loop: look again later
            self._missed += 1

    async def process_one(self) -> bool:
        """Claim and process the next due update; False when there was none (or the database
        failed: the update stays recorded, and the loop waits before trying again)."""
        return await self._process(1) > 0

    async def process_some(self) -> int:
        """Claim and process up to `batch` due updates of different lanes in one transaction
        (see the module doc); how many (0: none was due, or the database failed)."""
        return await self._process(self._batch)

    async def process_all(self) -> int:
        """Process every due update (tests, one-off commands); how many."""
        count = 0
        while taken := await self.process_some():
            count += taken
        return count

    async def _process(self, limit: int) -> int:
        try:
            done = await asyncio.to_thread(self._process_batch, limit)
        except Exception:
            log.exception("the inbox could not be read or written; retrying shortly")
            return 0
        if not done:
            return 0
        # Each update done may have held back the next of its lane: that one may be due now.
        released = min(self._missed, len(done))
        self._missed -= released
        self._relooks += released
        if any(p.queued for p in done) and self._on_queued is not None:
            self._on_queued()
        if any(p.stored_text for p in done):
            self._engine.notify_text_listeners()
        return len(done)

    # -- in a worker thread --------------------------------------------------------------------

    def _process_batch(self, limit: int) -> list[Processed]:
        """Up to `limit` updates in one transaction. A failing turn rolls them all back; its
        failure is recorded, and the others are taken again one at a time (each in its own),
        which isolates any other that fails."""
        try:
            return self._take_and_turn(limit)
        except _TurnFailed as failed:
            # The turns were rolled back whole (no savepoint: two statements fewer per turn)
            # and the failure is recorded in a transaction of its own, which makes the update
            # wait for its retry time. In between, it is due again and another worker may
            # retry it a little early: harmless, since a turn commits whole or not at all.
            with transaction(self._db) as session:
                self._failed(session, failed.row, failed.error)
            done = [Processed(update_id=failed.row.id, queued=False)]
            others = failed.taken - 1
        if others:
            log.info("a turn failed in a group; taking the other %d one at a time", others)
        for _ in range(others):
            one = self._process_batch(1)
            if not one:
                break
            done.extend(one)
        return done

    def _take_and_turn(self, limit: int) -> list[Processed]:
        done: list[Processed] = []
        with transaction(self._db) as session:
            # Claimed, marked processed and counted for the flood limit in one statement;
            # a failing turn rolls the marks back with everything else.
            now = utcnow()
            rows = inbox_q.take_next_updates(
                session, now=now, count_since=self._flood.counting_from(now), limit=limit
            )
            for row in rows:
                try:
                    done.append(self._turn(session, row))
                except Exception as exc:
                    raise _TurnFailed(row, exc, taken=len(rows)) from exc
        return done

    def _turn(self, session: Session, row: ClaimedUpdate) -> Processed:
        """One claimed update's turn, in the caller's transaction."""
        translate = self._translators.get(row.channel)
        if translate is None:
            # Processes sharing a database run the same channels (one configuration).
            raise LookupError(f"no translator for channel {row.channel!r}")
        inbound = translate(row.body)
        verdict = self._verdict(session, row, inbound)
        if verdict is Verdict.SERVE:
            queued, stored_text = self._apply(session, inbound)
            return Processed(update_id=row.id, queued=queued, stored_text=stored_text)
        queued = self._flooded(session, inbound, verdict)
        inbox_q.note_ignored(session, update_row=row, reason="ignored: over the flood limit")
        return Processed(update_id=row.id, queued=queued)

    def _verdict(self, session: Session, row: ClaimedUpdate, inbound: Inbound) -> Verdict:
        """Only a customer's messages count against the flood limit."""
        if not isinstance(inbound, IncomingMessage):
            return Verdict.SERVE
        return self._flood.verdict(session, row)

    def _flooded(self, session: Session, inbound: Inbound, verdict: Verdict) -> bool:
        """An update over the flood limit: the window's one notice, or nothing; (queued)."""
        assert isinstance(inbound, IncomingMessage)
        log.info("%s customer %s is over the flood limit: %s", *_sender(inbound), verdict.value)
        if verdict is not Verdict.NOTICE:
            return False
        locale = inbound.locale or self._engine.settings.survey.default_locale
        text = bot_text("flood", locale, seconds=self._flood.seconds)
        enqueue_notice(
            session, Notice(channel=inbound.channel, recipient=inbound.user_id, text=text)
        )
        return True

    def _apply(self, session: Session, inbound: Inbound) -> tuple[bool, bool]:
        """Act on one translated update inside its transaction: (queued a send, stored text)."""
        if isinstance(inbound, IncomingMessage):
            # The inbox row is the record that this update was handled: no second one.
            turn = self._engine.turn_in(session, replace(inbound, event_id=None))
            return True, turn.stored_text
        if isinstance(inbound, Notice):
            enqueue_notice(session, inbound)
            return True, False
        if isinstance(inbound, Unreachable):
            log.info("%s customer %s is unreachable: %s", *_who(inbound), inbound.reason)
            customer = cust_q.upsert_customer(
                session, channel=inbound.channel, external_id=inbound.user_id
            )
            cust_q.set_unreachable(session, customer=customer, reason=inbound.reason)
            return False, False
        assert isinstance(inbound, Ignored)
        log.debug("ignoring an update: %s", inbound.reason)
        return False, False

    @staticmethod
    def _failed(session: Session, row: ClaimedUpdate, exc: Exception) -> None:
        attempts = row.attempts + 1
        error = f"{type(exc).__name__}: {exc}"
        if attempts < MAX_ATTEMPTS:
            retry_at = datetime.now(UTC) + timedelta(seconds=2 ** (attempts - 1))
            inbox_q.note_failure(session, update_row=row, error=error, retry_at=retry_at)
            log.warning("processing update %s failed; trying again", row.id, exc_info=exc)
            return
        inbox_q.note_failure(session, update_row=row, error=error, retry_at=None)
        log.error("gave up processing update %s after %d attempts", row.id, attempts, exc_info=exc)


class _TurnFailed(Exception):
    """A claimed update's turn raised: carries the row out of the rolled-back transaction."""

    def __init__(self, row: ClaimedUpdate, error: Exception, *, taken: int) -> None:
        super().__init__(str(error))
        self.row = row
        self.error = error
        self.taken = taken  # updates claimed with it (all rolled back)


def _sender(inbound: IncomingMessage) -> tuple[str, str]:
    return inbound.channel, inbound.user_id


def _who(inbound: Unreachable) -> tuple[str, str]:
    return inbound.channel, inbound.user_id
