"""The delivery worker: sends the outbox, in order per recipient, and records what happened.

One pass claims the oldest unsent row of each lane that is due (`storage.outbox.claim_due`),
sends it through the channel's `ChannelSender` outside any transaction, and records the result:

- sent: the platform's message id is kept (a later button press or edit refers to it);
- `RateLimitedError`: tried again when the platform says (the lane waits, others go on);
- other `DeliveryError`: tried again with doubling waits (`RETRY`), then given up;
- `RecipientUnreachableError`, or retries used up: given up at once. A survey message given up
  is kept as a delivery failure, the customer marked unreachable when the platform says so, and
  the survey marked undelivered: when the customer writes next, the current question comes
  again instead of their message being taken as its answer.

Button answers and closing old buttons are cosmetic: one that fails is logged and dropped.
Events for other systems (`event` rows, `bot.webhook_events`) are treated like messages —
retried, then given up into a delivery failure — and a `DeliveryRefusedError` (a webhook's 4xx)
gives one up at once; they go to a sender that is also an `EventSender`.

**The one window for a repeat.** A message sent whose result was not yet recorded when the
process died is sent again after the restart (its claim is released once the dead process is
known gone: at once on the same host, after `lease` elsewhere). By default one message is in
flight per process (`max_in_flight`), so a crash repeats at most one message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import (
    DeliveryError,
    DeliveryRefusedError,
    RateLimitedError,
    RecipientUnreachableError,
)
from bot.log_redaction import redact
from bot.messages import ChannelSender, EventSender, SentRef
from bot.turn_outbox import message_from_body
from bot.waiting import wait_for_event
from bot.webhook_events import event_from_body
from storage import conversations as conv_q
from storage import customers as cust_q
from storage import outbox as out_q
from storage.database import Database, Session, transaction
from storage.loop_records import LoopSentRecorder
from storage.outbox import ClaimedMessage
from storage.review_queue import add_delivery_failure

log = logging.getLogger(__name__)

# Kinds whose loss matters: retried, and kept as a delivery failure when given up.
_RECORDED_KINDS = frozenset({out_q.KIND_MESSAGE, out_q.KIND_EVENT})
# How often a running worker looks for claims of processes of this host that died. By time, not
# by passes: an idle worker makes one pass per poll, and a dead process's messages would wait
# for its lease (two minutes) instead of being taken over within seconds.
DEAD_CLAIMS_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """How long a lane waits after a failed send: doubling from `first`, at most `attempts`.

    The one retry policy for every platform: adapters try each call once (or briefly) and the
    outbox does the waiting, so no customer's turn waits on a slow platform.
    """

    first: float = 2.0
    longest: float = 300.0
    attempts: int = 8

    def wait(self, attempts: int) -> float | None:
        """Seconds before attempt `attempts + 1`; None once they are used up."""
        if attempts >= self.attempts:
            return None
        return float(min(self.first * 2 ** max(attempts - 1, 0), self.longest))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt did."""

    row_id: int
    status: str  # sent / retry / failed / dropped
    error: str | None = None
    unreachable: bool = False  # the platform says the recipient cannot be written to


def worker_name() -> str:
    """This process's name on its claims: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_on_this_host(worker: str) -> bool:
    """Whether `worker` names a process of this host that no longer runs."""
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class _Claimed:
    """A claimed row, with what a `close` row refers to (read in the claiming transaction)."""

    row: ClaimedMessage
    ref: SentRef | None = None
    ref_text: str | None = None


@dataclass
class _Attempt:
    """One attempt's result, recorded in the next transaction."""

    claimed: _Claimed
    status: str  # sent / retry / failed / dropped
    sent: SentRef | None = None
    error: str | None = None
    unreachable: bool = False
    wait: float = 0.0

    def outcome(self) -> Outcome:
        return Outcome(_id(self.claimed.row), self.status, self.error, self.unreachable)


class DeliveryWorker:
    """Sends the outbox of the channels in `senders` until cancelled (`run`).

    One pass claims the heads of up to `batch` lanes in one transaction. Button answers and
    closing old buttons (harmless to repeat) go out together; messages go out `max_in_flight`
    at a time, and each one's result is recorded before the next is sent — so a crash repeats
    at most `max_in_flight` messages. Several processes may run one each on PostgreSQL: a row
    is claimed by one of them.
    """

    def __init__(
        self,
        *,
        db: Database,
        senders: Mapping[str, ChannelSender],
        schedule: RetrySchedule | None = None,
        lease: timedelta = timedelta(seconds=120),
        max_in_flight: int = 1,
        batch: int = 32,
        poll_seconds: float = 1.0,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        # Records what was sent before the next message goes out; on PostgreSQL on a connection
        # it keeps for the pass (released at the end of each).
        self._recorder = out_q.SentRecorder(db)
        # The same, awaited in the event loop: the record between two messages takes no hop to
        # a worker thread (it falls back to `_recorder` when it cannot be made there).
        self._loop_recorder = LoopSentRecorder(db, fallback=self._recorder)
        self._senders = dict(senders)
        self._schedule = schedule or RetrySchedule()
        self._lease = lease
        self._max_in_flight = max(1, max_in_flight)
        self._batch = max(1, batch)
        self._poll = poll_seconds
        self._on_sent = on_sent
        self.name = worker_name()
        self._wake = asyncio.Event()
        self._carried: list[_Attempt] = []  # attempts made, to be recorded by the next pass

    @property
    def max_in_flight(self) -> int:
        """Messages sent at once (each may be repeated if the process dies meanwhile)."""
        return self._max_in_flight

    @property
    def lease(self) -> timedelta:
        """How long a claim is left to this worker before others take it over."""
        return self._lease

    def nudge(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; claims left by dead processes on this host are taken over."""
        await asyncio.to_thread(self.release_dead_claims)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + DEAD_CLAIMS_EVERY
        try:
            while True:
                # The last results of a pass are recorded in the next pass's claiming
                # transaction: one transaction per pass instead of two.
                try:
                    done = await self._pass(None, carry=True)
                except Exception:
                    # The database failed (what was sent stays carried, to be recorded later):
                    # keep serving, and look again after a pause.
                    log.exception("the outbox could not be read or written; retrying shortly")
                    await asyncio.sleep(self._poll)
                    continue
                if loop.time() >= next_check:
                    next_check = loop.time() + DEAD_CLAIMS_EVERY
                    await asyncio.to_thread(self.release_dead_claims)
                if not done and not self._carried:
                    if not await wait_for_event(self._wake, self._poll):
                        await self._loop_recorder.aclose()  # idle: keep no connection
                    self._wake.clear()
        finally:
            if self._carried:  # stopping: what was sent is put on record
                carried, self._carried = self._carried, []
                await asyncio.shield(asyncio.to_thread(self._record_and_release, carried))
            await asyncio.shield(self._loop_recorder.aclose())

    def _record_and_release(self, attempts: list[_Attempt]) -> None:
        try:
            self._record(attempts)
        finally:
            self._recorder.release()

    def release_dead_claims(self) -> int:
        """Release claims of processes of this host that died; how many rows were freed."""
        with transaction(self._db) as session:
            dead = [w for w in out_q.claim_holders(session) if _dead_on_this_host(w)]
            freed = out_q.release_claims(session, workers=dead)
        if freed:
            log.warning("took over %d outbox messages claimed by stopped processes", freed)
        return freed

    async def deliver_due(self, lanes: Collection[str] | None = None) -> list[Outcome]:
        """One pass: claim what is due (of `lanes` only, if given), send it, record it."""
        return await self._pass(lanes, carry=False)

    async def _pass(self, lanes: Collection[str] | None, *, carry: bool) -> list[Outcome]:
        try:
            return await self._pass_once(lanes, carry=carry)
        finally:
            if self._recorder.holding:
                await asyncio.to_thread(self._recorder.release)
            if not carry:  # a pass on its own (`deliver_due`): `run` closes it when idle
                await self._loop_recorder.aclose()

    async def _pass_once(self, lanes: Collection[str] | None, *, carry: bool) -> list[Outcome]:
        carried, self._carried = self._carried, []
        try:
            claimed = await asyncio.to_thread(self._claim, lanes, carried)
        except Exception:
            self._carried = carried + self._carried  # not on record yet: keep them for later
            raise
        if not claimed:
            return []
        messages = [c for c in claimed if c.row.kind == out_q.KIND_MESSAGE]
        others = [c for c in claimed if c.row.kind != out_q.KIND_MESSAGE]
        pending = list(await asyncio.gather(*(self._attempt(c) for c in others)))
        attempts = list(pending)
        for start in range(0, len(messages), self._max_in_flight):
            chunk = messages[start : start + self._max_in_flight]
            if pending and start > 0:
                # What was sent is on record before the next message goes out.
                await self._record_or_carry(pending)
                pending = []
            done = await asyncio.gather(*(self._attempt(c) for c in chunk))
            pending.extend(done)
            attempts.extend(done)
        if carry:
            self._carried = pending
        elif pending:
            await self._record_or_carry(pending)
        if self._on_sent is not None and any(a.status == "sent" for a in attempts):
            self._on_sent()
        return [a.outcome() for a in attempts]

    async def _record_or_carry(self, attempts: list[_Attempt]) -> None:
        """Record now; if the database fails, keep them for the next pass and stop this one."""
        try:
            if all(a.status == "sent" for a in attempts):  # the common case: from the loop
                await self._loop_recorder.record(_sent(attempts))
            else:
                await asyncio.to_thread(self._record, attempts)
        except Exception:
            self._carried.extend(attempts)
            raise

    async def drain(self, lanes: Collection[str], *, timeout: float = 30.0) -> list[Outcome]:
        """Deliver everything queued for `lanes` now (`cxbot invite`); what each attempt did."""
        outcomes: list[Outcome] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            done = await self.deliver_due(lanes)
            outcomes.extend(done)
            if done and all(o.status == "retry" for o in done):
                break  # the platform asked to wait: the worker of `cxbot serve` goes on later
            if not done:
                if not await asyncio.to_thread(self._pending, lanes):
                    break
                await asyncio.sleep(0.05)  # claimed by another process, or not yet due
        return outcomes

    # -- claiming and recording, in worker threads ---------------------------------------------

    def _claim(self, lanes: Collection[str] | None, carried: list[_Attempt]) -> list[_Claimed]:
        with transaction(self._db) as session:
            self._record_in(session, carried)
            rows = out_q.claim_due(
                session,
                worker=self.name,
                lease=self._lease,
                limit=self._batch,
                channels=tuple(self._senders),
                lanes=lanes,
            )
            return [self._with_reference(session, row) for row in rows]

    @staticmethod
    def _with_reference(session: Session, row: ClaimedMessage) -> _Claimed:
        """A `close` row with the sent message it refers to (none: nothing to close)."""
        if row.kind != out_q.KIND_CLOSE:
            return _Claimed(row)
        body = row.body
        if body.get("message_id") is not None:
            ref = SentRef(message_id=str(body["message_id"]), chat=body.get("chat"))
            return _Claimed(row, ref, body.get("text"))
        if body.get("ref") is None:
            return _Claimed(row)
        target = out_q.get_message(session, message_id=int(body["ref"]))
        if target is None or target.platform_message_id is None:
            return _Claimed(row)  # never sent (given up)
        ref = SentRef(message_id=target.platform_message_id, chat=target.platform_chat)
        return _Claimed(row, ref, str(target.body.get("text") or ""))

    def _pending(self, lanes: Collection[str]) -> int:
        with transaction(self._db) as session:
            return out_q.pending_in_lanes(session, lanes=lanes)

    def _record(self, attempts: list[_Attempt]) -> None:
        if all(a.status == "sent" for a in attempts):  # the common case: one statement
            self._recorder.record(_sent(attempts))
            return
        with transaction(self._db) as session:
            self._record_in(session, attempts)

    def _record_in(self, session: Session, attempts: list[_Attempt]) -> None:
        # What went through (nearly everything) is recorded in one statement.
        out_q.record_sent_many(session, _sent(attempts))
        for attempt in attempts:
            row = attempt.claimed.row
            if attempt.status == "sent":
                continue
            if attempt.status == "retry":
                not_before = datetime.now(UTC) + timedelta(seconds=attempt.wait)
                out_q.record_retry(
                    session,
                    message_id=_id(row),
                    error=redact(attempt.error or ""),  # an SDK's error may quote a token
                    not_before=not_before,
                )
            else:
                error = redact(attempt.error or "")
                self._give_up(session, row, error, unreachable=attempt.unreachable)

    @staticmethod
    def _give_up(session: Session, row: ClaimedMessage, error: str, *, unreachable: bool) -> None:
        out_q.record_failed(session, message_id=_id(row), error=error)
        if row.kind not in _RECORDED_KINDS:
            return  # cosmetic: a button answer or an old keyboard
        add_delivery_failure(
            session,
            channel=row.channel,
            target=row.recipient,
            purpose=row.purpose,
            error=error,
            review_item_id=row.review_item_id,
        )
        if unreachable:
            # Nothing more can reach them: the rest of the lane is given up with it.
            out_q.fail_lane(session, lane=row.lane, error=error)
        customer = cust_q.get_customer(session, channel=row.channel, external_id=row.recipient)
        if customer is None or customer.id is None:
            return
        if unreachable:
            cust_q.set_unreachable(session, customer=customer, reason=error)
        if row.purpose == "survey":
            conversation = conv_q.active_conversation(session, customer_id=customer.id)
            if conversation is not None:
                conv_q.mark_undelivered(session, conversation=conversation, redeliver_at=None)

    # -- sending -------------------------------------------------------------------------------

    async def _attempt(self, claimed: _Claimed) -> _Attempt:
        row = claimed.row
        cosmetic = row.kind not in _RECORDED_KINDS
        try:
            sent = await self._send(claimed)
        except RecipientUnreachableError as exc:
            return self._failed(claimed, str(exc), unreachable=True)
        except DeliveryRefusedError as exc:
            return self._failed(claimed, str(exc), unreachable=False)
        except RateLimitedError as exc:
            if cosmetic:
                return self._failed(claimed, str(exc), unreachable=False)
            log.warning("outbox %s: %s; the lane waits %g s", row.id, exc, exc.retry_after)
            return _Attempt(claimed, "retry", error=str(exc), wait=max(exc.retry_after, 0.5))
        except Exception as exc:  # DeliveryError, or a bug in a sender: never a silent loss
            if not isinstance(exc, DeliveryError):
                log.exception("outbox %s: the %s sender failed unexpectedly", row.id, row.channel)
            wait = self._schedule.wait(row.attempts + 1)
            if cosmetic or wait is None:
                return self._failed(claimed, str(exc), unreachable=False)
            log.warning("outbox %s: %s; trying again in %g s", row.id, exc, wait)
            return _Attempt(claimed, "retry", error=str(exc), wait=wait)
        return _Attempt(claimed, "sent", sent=sent)

    @staticmethod
    def _failed(claimed: _Claimed, error: str, *, unreachable: bool) -> _Attempt:
        row = claimed.row
        if row.kind in _RECORDED_KINDS:
            log.error("gave up sending outbox message %s to %s: %s", row.id, row.lane, error)
            return _Attempt(claimed, "failed", error=error, unreachable=unreachable)
        log.info("dropped outbox %s %s for %s: %s", row.kind, row.id, row.lane, error)
        return _Attempt(claimed, "dropped", error=error, unreachable=unreachable)

    async def _send(self, claimed: _Claimed) -> SentRef | None:
        row = claimed.row
        sender = self._senders[row.channel]
        body: dict[str, Any] = row.body
        if row.kind == out_q.KIND_MESSAGE:
            return await sender.send(message_from_body(row.channel, row.recipient, body))
        if row.kind == out_q.KIND_BUTTON:
            await sender.answer_button(
                user_id=row.recipient,
                query_id=body.get("query_id"),
                chat=body.get("chat"),
                text=body.get("text"),
            )
            return None
        if row.kind == out_q.KIND_EVENT:
            if not isinstance(sender, EventSender):
                raise DeliveryRefusedError(f"the {row.channel} sender cannot deliver events")
            await sender.send_event(event_from_body(body))
            return None
        if row.kind == out_q.KIND_CLOSE:
            if claimed.ref is not None:
                await sender.close_question(
                    user_id=row.recipient,
                    sent=claimed.ref,
                    text=claimed.ref_text,
                    label=body.get("label"),
                )
            return None
        raise DeliveryError(f"unknown outbox kind {row.kind!r}")


def _sent(attempts: list[_Attempt]) -> list[tuple[int, str | None, str | None]]:
    """(row id, platform message id, chat) of the attempts that went through."""
    return [
        (_id(a.claimed.row), a.sent.message_id if a.sent else None, a.sent.chat if a.sent else None)
        for a in attempts
        if a.status == "sent"
    ]


def _id(row: ClaimedMessage) -> int:
    return row.id
