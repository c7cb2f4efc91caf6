"""Records of sent messages made from the event loop (`storage.loop_records`): what they store,
and that a busy writer or a dropped connection sends the record the worker-thread way instead
of losing it or holding the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storage import outbox as out_q
from storage.database import SQLITE_BUSY_TIMEOUT_MS, open_database, transaction
from storage.loop_records import LoopSentRecorder
from storage.tables import OutboxMessage, as_utc, utcnow


def _queued(db: Engine, *texts: str) -> list[int]:
    """Rows queued for customer 42."""
    with transaction(db) as s:
        return [
            out_q.enqueue(
                s, channel="telegram", recipient="42", kind=out_q.KIND_MESSAGE, body={"text": t}
            )
            for t in texts
        ]


def _row(db: Engine, row_id: int) -> OutboxMessage:
    with transaction(db) as s:
        row = out_q.get_message(s, message_id=row_id)
        assert row is not None
        return row


async def test_a_record_from_the_loop_stores_what_the_platform_took(db: Engine) -> None:
    first, second = _queued(db, "one", "two")
    recorder = LoopSentRecorder(db, fallback=out_q.SentRecorder(db))
    try:
        await recorder.record([(first, "m-1", "chat-42")])
        assert recorder.holding  # kept for the next message
        await recorder.record([(second, "m-2", None)])
    finally:
        await recorder.aclose()
    assert not recorder.holding
    one, two = _row(db, first), _row(db, second)
    assert (one.platform_message_id, one.platform_chat, one.attempts) == ("m-1", "chat-42", 1)
    assert one.claimed_by is None
    # Written as SQLAlchemy writes a date (SQLite: its text form), so it reads back as one.
    sent_at = as_utc(one.sent_at)
    assert sent_at is not None and abs(sent_at - utcnow()) < timedelta(minutes=1)
    assert (two.platform_message_id, two.platform_chat) == ("m-2", None)
    assert two.sent_at is not None


async def test_several_rows_are_recorded_together(db: Engine) -> None:
    ids = _queued(db, "a", "b", "c")
    recorder = LoopSentRecorder(db, fallback=out_q.SentRecorder(db))
    try:
        await recorder.record([(i, f"m{i}", None) for i in ids])
    finally:
        await recorder.aclose()
    assert [_row(db, i).platform_message_id for i in ids] == [f"m{i}" for i in ids]


async def test_another_process_writing_sends_the_record_to_a_thread(tmp_path: Path) -> None:
    """SQLite: another process holds the database's write lock. The loop does not wait for it
    (its connection's busy_timeout is 0): the record is made from a worker thread, which waits
    its turn, and is stored once the other writer commits."""
    path = tmp_path / "cxbot.db"
    db = open_database(f"sqlite:///{path}")
    row_id, later = _queued(db, "hello", "later")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    recorder = LoopSentRecorder(db, fallback=out_q.SentRecorder(db))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    releaser = threading.Timer(0.5, other.execute, args=("COMMIT",))
    tick_task = asyncio.create_task(ticker())
    releaser.start()
    try:
        await recorder.record([(row_id, "m-9", None)])
        releaser.join()
        assert ticks > 0  # the loop ran while the record waited, in a thread, for the writer
        await recorder.record([(later, "m-10", None)])  # the kept connection is still good
    finally:
        tick_task.cancel()
        releaser.join()
        other.close()
        await recorder.aclose()
    assert _row(db, row_id).platform_message_id == "m-9"
    assert _row(db, later).platform_message_id == "m-10"
    # The connection the recorder kept goes back to the pool as every other one is.
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    db.dispose()


@pytest.mark.postgres
async def test_a_connection_the_server_dropped_costs_only_a_detour(pg_db: Engine) -> None:
    """PostgreSQL: the kept asynchronous connection is killed by the server; the next record is
    made the worker-thread way (nothing lost) and the one after opens a new connection."""
    first, second, third = _queued(pg_db, "one", "two", "three")
    recorder = LoopSentRecorder(pg_db, fallback=out_q.SentRecorder(pg_db))
    try:
        await recorder.record([(first, "m-1", None)])
        kept = recorder._pg  # the recorder's own connection, for the server to drop
        assert kept is not None
        with transaction(pg_db) as s:
            killed = s.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": kept.info.backend_pid}
            ).scalar()
        assert killed is True
        await recorder.record([(second, "m-2", None)])
        await recorder.record([(third, "m-3", None)])
        assert recorder.holding
    finally:
        await recorder.aclose()
        out_q.SentRecorder(pg_db).release()
    assert [_row(pg_db, i).platform_message_id for i in (first, second, third)] == [
        "m-1",
        "m-2",
        "m-3",
    ]
