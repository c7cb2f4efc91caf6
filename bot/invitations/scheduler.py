"""The scheduler of `cxbot serve`: sends invitations whose time has come.

Each pass claims up to `[invitations] batch_size` due invitations (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several processes share the work; the single writer on SQLite) and, in the same
transaction, re-checks each one's rules and opens its survey (the engine writes the first
messages to the outbox) or withholds it or moves it out of quiet hours. A process killed
mid-pass loses its transaction: the rows are scheduled again and the next pass (of any process)
takes them, so an invitation is sent once or not yet, never twice and never lost.

One failing invitation is undone in a savepoint and tried again later (with backoff), so it
cannot hold back the others; after `MAX_ATTEMPTS` it is withheld with reason `error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

from bot.invitations.rules import Reason
from bot.invitations.service import Invitations
from bot.waiting import wait_for_event
from storage import invitation_rows as rows_q
from storage.database import Database, Session, transaction
from storage.invitation_rows import StoredInvitation
from storage.tables import InvitationStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)


class InvitationScheduler:
    """Sends due scheduled invitations through `Invitations.send_scheduled_in`."""

    def __init__(
        self,
        *,
        db: Database,
        invitations: Invitations,
        batch_size: int | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self._db = db
        self._invitations = invitations
        cfg = invitations.settings.invitations
        self._batch = batch_size or cfg.batch_size
        self._poll = poll_seconds or cfg.poll_seconds
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """An invitation was scheduled: look again now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send due invitations until cancelled."""
        while True:
            try:
                counts = await self.send_due()
            except Exception:
                # The database failed: nothing was half-done (one transaction per pass).
                log.exception("scheduled invitations could not be read or written; retrying")
                counts = Counter()
            if sum(counts.values()) >= self._batch:
                continue  # more may be due at once
            await wait_for_event(self._wake, await asyncio.to_thread(self._sleep_seconds))
            self._wake.clear()

    async def send_due(self) -> Counter[str]:
        """One pass: the due invitations claimed and decided; how many ended in each status."""
        counts = await asyncio.to_thread(self.send_due_sync)
        if counts[InvitationStatus.SENT]:
            self._invitations.notify_queued()
        return counts

    async def send_all_due(self) -> Counter[str]:
        """Passes until nothing due is left (tests, one-off commands)."""
        total: Counter[str] = Counter()
        while True:
            counts = await self.send_due()
            total.update(counts)
            if sum(counts.values()) < self._batch:
                return total

    def send_due_sync(self) -> Counter[str]:
        """`send_due` in the calling thread: ONE transaction for the claimed batch."""
        now = self._invitations.clock()
        counts: Counter[str] = Counter()
        with transaction(self._db) as session:
            rows = rows_q.claim_due_invitations(
                session, now=now, limit=self._batch, channels=self._invitations.channels
            )
            for row in rows:
                try:
                    with session.begin_nested():
                        status = self._invitations.send_scheduled_in(session, row, now=now)
                except Exception as exc:
                    status = self._failed(session, row, exc)
                counts[status] += 1
        if rows:
            log.info("scheduled invitations: %s", dict(counts))
        return counts

    def _failed(self, session: Session, row: StoredInvitation, exc: Exception) -> str:
        """Count the failure on the row (outside the undone savepoint); withhold it at last."""
        error = f"{type(exc).__name__}: {exc}"
        now = self._invitations.clock()
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("gave up invitation %s after %d attempts", row.id, attempts, exc_info=exc)
            rows_q.note_failure(session, invitation_id=row.id, error=error, retry_at=row.send_at)
            rows_q.mark_withheld(
                session,
                invitation_id=row.id,
                reason=Reason.ERROR,
                detail=f"could not be sent after {attempts} attempts: {error}",
                now=now,
            )
            return InvitationStatus.WITHHELD
        retry_at = now + RETRY_BASE * 2 ** (attempts - 1)
        log.warning("invitation %s failed; trying again at %s", row.id, retry_at, exc_info=exc)
        rows_q.note_failure(session, invitation_id=row.id, error=error, retry_at=retry_at)
        return InvitationStatus.SCHEDULED

    def _sleep_seconds(self) -> float:
        """Until the next invitation is due, at most the poll interval."""
        with transaction(self._db) as session:
            due = rows_q.next_due_invitation(session, channels=self._invitations.channels)
        if due is None:
            return self._poll
        wait = (due - self._invitations.clock()).total_seconds()
        # A row already due here is one another process holds (or is about to send): look again
        # soon, not in a tight loop.
        return min(self._poll, max(0.2, wait))
