"""At scale: three `cxbot serve` processes on one PostgreSQL database, 2,000 scheduled
invitations and their reminders, one process killed with SIGKILL midway (issue 11).

The customers wrote to the bot before (their chats are known to the fake Bot API, and their
customer rows exist). The three processes run the Telegram channel in webhook mode against the
loopback fake, which answers every call after 20–50 ms from a thread per connection, so that
sends overlap the kill. 2,000 invitations are posted through `POST /api/v1/invitations/batch`
(two batches of 1,000, to two of the processes, at once) with a `send_after` an hour ahead,
brought forward to now once all are stored (as a schedule coming due; storing takes longer on a
busy machine, and an invitation whose time has passed is sent by the request itself), so that
the processes' schedulers do the sending; `[reminders] after_hours` is a few
seconds (it takes fractions of an hour), and nobody answers, so every survey gets its reminder.
When a third of the customers have their first question, one process is SIGKILLed and not
restarted: the other two take over its claims (invitations and reminders: row locks that died
with its connection; outbox messages: claims of a process dead on this host, released within
`bot.delivery.DEAD_CLAIMS_EVERY` seconds).

Asserted from the fake's records and the database: every invitation `sent`, one survey per
customer, each survey's messages (intro, first question) queued once and each reminder decided
once (`reminders_sent` = 1, one outbox row), every one of them sent; on the wire every customer
got the first question and the reminder, and messages that went out twice never outnumber the
sends the killed process had in flight (`[delivery] max_in_flight`: the outbox's one window —
a message the platform took whose result the dead process never recorded). The figures are
printed (`pytest -s`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from storage.database import Database, create_db_engine
from storage.tables import Conversation, Customer, Invitation, OutboxMessage
from tests.conftest import _postgres_database
from tests.fakes.kill_harness import serve_env
from tests.fakes.serve_fleet import (
    Fleet,
    create_api_key,
    invitation_rows,
    post_batches,
    seed_customers,
)
from tests.fakes.telegram_api import ApiCall, FakeTelegramAPI

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PROCESSES = 3
INVITATIONS = 2000
FIRST_CHAT = 910_000
CHATS = [FIRST_CHAT + n for n in range(INVITATIONS)]
LATENCY = (0.02, 0.05)  # seconds the fake takes to answer each call
MAX_IN_FLIGHT = 8  # [delivery] max_in_flight of each process
SEND_AFTER = 3600.0  # seconds ahead: brought forward by the test once every row is stored
REMIND_AFTER = 15.0  # seconds of silence after a question before its reminder
KILL_AT = INVITATIONS // 3  # customers with their first question when the kill comes
VICTIM = 1  # which process is killed (one that answered a batch)
SECRET = "scale_Secret-42"
QUESTION = "How likely are you to recommend us"
REMINDER = "Reminder:"


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_database()


class Wire:
    """What reached the fake, counted as it arrives (in the fake's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sends: Counter[tuple[int, str]] = Counter()  # (chat, text) → times sent
        self.asked: set[int] = set()  # chats that got the first question
        self.reminded: set[int] = set()
        self.first_send: float | None = None

    def __call__(self, call: ApiCall) -> None:
        if call.method != "sendMessage" or call.status != 200:
            return
        chat, text = int(call.body["chat_id"]), str(call.body["text"])
        with self._lock:
            if self.first_send is None:
                self.first_send = time.monotonic()
            self.sends[chat, text] += 1
            if text.startswith(REMINDER):
                self.reminded.add(chat)
            elif QUESTION in text:
                self.asked.add(chat)

    def counts(self) -> tuple[int, int]:
        """(customers asked, customers reminded) so far."""
        with self._lock:
            return len(self.asked), len(self.reminded)

    def repeats(self) -> int:
        """Messages sent beyond their first time."""
        with self._lock:
            return sum(n - 1 for n in self.sends.values())

    def repeated_kinds(self) -> Counter[str]:
        """Messages sent beyond their first time, by kind (intro, question, reminder)."""
        with self._lock:
            found: Counter[str] = Counter()
            for (_, text), n in self.sends.items():
                kind = (
                    "reminder"
                    if text.startswith(REMINDER)
                    else "question"
                    if QUESTION in text
                    else "intro"
                )
                found[kind] += n - 1
            return +found


def test_three_processes_send_2000_invitations_and_reminders_once_across_a_kill(
    pg_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    with FakeTelegramAPI() as fake:
        for method in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
            fake.latency[method] = LATENCY
        wire = Wire()
        fake.listeners.append(wire)
        env = serve_env(
            tmp_path / "data",
            pg_url,
            telegram__token=fake.token,
            telegram__base_url=fake.base_url,
            telegram__mode="webhook",
            telegram__webhook_url="https://cx.example.com/telegram/webhook",
            telegram__secret_token=SECRET,
            invitations__poll_seconds="0.5",
            invitations__batch_size="50",
            reminders__after_hours=str(REMIND_AFTER / 3600),
            reminders__poll_seconds="0.5",
            delivery__max_in_flight=str(MAX_IN_FLIGHT),
        )
        key = create_api_key(env, tmp_path)  # migrates the fresh database too
        seed_customers(pg_url, CHATS)
        fake.known_chats.update(CHATS)  # they wrote to the bot before
        fleet = Fleet(env, tmp_path, PROCESSES)
        watch = create_db_engine(pg_url)  # the test's own look at the outbox
        try:
            urls = fleet.start()
            posted = time.monotonic()
            send_after = datetime.now(UTC) + timedelta(seconds=SEND_AFTER)
            results = post_batches(urls[:2], key, invitation_rows(CHATS, send_after=send_after))
            stored_in = time.monotonic() - posted
            statuses = Counter(r["status"] for r in results)
            assert statuses == {"scheduled": INVITATIONS}, (
                f"{statuses}: storing took {stored_in:.1f} s, past send_after ({SEND_AFTER} s)"
            )
            assert all(r["created"] for r in results)
            _come_due(watch)

            deadline = time.monotonic() + 120
            while wire.counts()[0] < KILL_AT:
                assert time.monotonic() < deadline, f"{wire.counts()}\n{fleet.logs()}"
                time.sleep(0.005)
            asked_at_kill, reminded_at_kill = wire.counts()
            killed_pid = fleet.kill(VICTIM)
            killed_at = time.monotonic()
            left_claimed = _claimed_by(watch, killed_pid)

            taken_over: float | None = None
            deadline = time.monotonic() + 150
            while wire.counts() != (INVITATIONS, INVITATIONS) or taken_over is None:
                assert time.monotonic() < deadline, f"{wire.counts()}\n{fleet.logs()}"
                if taken_over is None and _claimed_by(watch, killed_pid) == 0:
                    taken_over = time.monotonic() - killed_at
                time.sleep(0.25)
            time.sleep(1.0)  # anything sent twice would arrive by now
            survivors = fleet.alive()
        finally:
            fleet.stop()
            watch.dispose()
        seconds = time.monotonic() - started
        first_send = wire.first_send or killed_at
        repeats = wire.repeats()
        repeated = wire.repeated_kinds()
        sends = sum(wire.sends.values())

    stored = _stored(pg_url)
    print(
        f"\nscale kill test: {PROCESSES} cxbot serve processes on PostgreSQL, "
        f"{INVITATIONS} invitations (2 batches posted in {stored_in:.1f} s), fake Bot API "
        f"{LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms per call, max_in_flight "
        f"{MAX_IN_FLIGHT}\n"
        f"  killed process {VICTIM} (pid {killed_pid}) {killed_at - first_send:.1f} s into the "
        f"sending, with {asked_at_kill} customers asked and {reminded_at_kill} reminded;\n  "
        f"it held {left_claimed} unsent outbox claims, taken over by the survivors "
        f"{processes(survivors)} within {taken_over or 0:.1f} s\n"
        f"  delivered: {len(wire.asked)} first questions, {len(wire.reminded)} reminders, "
        f"{sends} sendMessage in all; sent twice: {repeats} {dict(repeated)}\n"
        f"  stored: {stored['sent']} invitations sent, {stored['conversations']} surveys, "
        f"{stored['reminders']} reminders decided, {stored['unsent']} outbox rows unsent\n"
        f"  {seconds:.1f} s in all"
    )
    assert survivors == [i for i in range(PROCESSES) if i != VICTIM]
    assert stored["sent"] == INVITATIONS  # every invitation sent, none withheld or left
    assert stored["conversations"] == stored["customers"] == INVITATIONS  # one survey each
    assert stored["per_lane"] == {(2, 1)}  # intro + first question once, one reminder
    assert stored["reminders_sent"] == {1}
    assert stored["unsent"] == 0
    assert wire.asked == set(CHATS)
    assert wire.reminded == set(CHATS)
    # The one window for a repeat: what the killed process had on the wire.
    assert repeats <= MAX_IN_FLIGHT


def processes(indexes: list[int]) -> str:
    """`[0, 2]` as "0 and 2"."""
    return " and ".join(map(str, indexes))


def _come_due(engine: Database) -> None:
    """Every scheduled invitation due now: the schedulers of the fleet take them from here."""
    with Session(engine) as s:
        s.execute(
            update(Invitation)
            .where(col(Invitation.status) == "scheduled")
            .values(send_at=datetime.now(UTC))
        )
        s.commit()


def _claimed_by(engine: Database, pid: int) -> int:
    """Unsent outbox rows claimed by the process `pid`."""
    with Session(engine) as s:
        return s.exec(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                col(OutboxMessage.claimed_by).contains(f":{pid}:"),
                col(OutboxMessage.sent_at).is_(None),
                col(OutboxMessage.failed_at).is_(None),
            )
        ).one()


def _stored(db_url: str) -> dict[str, object]:
    """What the database holds: invitations sent, surveys, outbox rows per lane, reminders."""
    engine = create_db_engine(db_url)
    try:
        with Session(engine) as s:
            invitations = s.exec(select(Invitation)).all()
            conversations = s.exec(
                select(Conversation).join(
                    Customer, col(Customer.id) == col(Conversation.customer_id)
                )
            ).all()
            messages = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "message")).all()
    finally:
        engine.dispose()
    per_lane: dict[str, list[int]] = {}
    for row in messages:
        counts = per_lane.setdefault(row.lane, [0, 0])
        counts[row.purpose == "reminder"] += 1
    return {
        "sent": sum(1 for i in invitations if i.status == "sent" and i.conversation_id),
        "conversations": len(conversations),
        "customers": len({c.customer_id for c in conversations}),
        "per_lane": {tuple(v) for v in per_lane.values()},
        "reminders": sum(1 for row in messages if row.purpose == "reminder"),
        "reminders_sent": {c.reminders_sent for c in conversations},
        "unsent": sum(1 for row in messages if row.sent_at is None),
    }
