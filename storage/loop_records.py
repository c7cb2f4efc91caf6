"""Records of messages sent, written from the event loop itself: no hop to a worker thread.

The delivery worker records each message the platform took before it sends the next (a crash
repeats at most one message), so that record sits on the path of every message. Made in a
worker thread it costs two hand-overs of the interpreter lock and a wake-up of the loop per
message; `LoopSentRecorder` makes it where the worker runs:

- PostgreSQL: on an asynchronous psycopg connection of its own, in autocommit (one round trip,
  awaited: the loop goes on meanwhile). It is kept while the worker is busy and closed when it
  idles (`aclose`). A failing record closes it and is made again on the worker-thread path
  (`SentRecorder`), so a connection the server dropped costs nothing but that detour.
- SQLite: a one-row UPDATE in WAL mode without fsync takes a fraction of a millisecond, so it
  runs right away on a connection kept for it, once it holds the process's writer lock. The
  loop waits for that lock at most `WRITER_WAIT_SECONDS` (about one turn of the inbox worker,
  which is what usually holds it); if it does not come, or another process holds SQLite's own
  lock (the kept connection never waits for it: busy_timeout 0), the record goes the
  worker-thread way instead. That connection never checkpoints (other connections do, in
  worker threads), so no record holds the loop up for longer than the wait and the UPDATE.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection

from storage.database import SQLITE_BUSY_TIMEOUT_MS, Database, writer_lock_within
from storage.outbox import RECORD_SENT, SentRecorder, sent_params

log = logging.getLogger(__name__)
# How long the loop may wait for SQLite's writer lock before the record goes to a thread: about
# one turn of the inbox worker, so that the common wait ends in the loop, and far below the
# loop's lag budget (20 ms p99).
WRITER_WAIT_SECONDS = 0.005

Sent = Sequence[tuple[int, str | None, str | None]]  # (row id, platform message id, chat)


class LoopSentRecorder:
    """`SentRecorder.record` awaited from the event loop (see the module doc); one coroutine
    at a time (a lock keeps it so)."""

    def __init__(self, db: Database, fallback: SentRecorder) -> None:
        self._db = db
        self._fallback = fallback
        self._lock = asyncio.Lock()
        self._postgres = db.dialect.name == "postgresql"
        self._pg: psycopg.AsyncConnection[Any] | None = None
        self._sqlite: Connection | None = None
        # Compiled once, run on the driver's connection: SQLAlchemy's execution costs more than
        # the statement itself.
        compiled = RECORD_SENT.compile(dialect=db.dialect)
        self._sql = str(compiled)
        self._defaults = dict(compiled.params)  # the literal NULLs and `attempts + 1`
        if self._postgres:
            self._pg_url = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        else:  # SQLite's positional parameters, each with SQLAlchemy's conversion for its type
            self._sqlite_binds = [
                (name, compiled.binds[name].type._cached_bind_processor(db.dialect))
                for name in compiled.positiontup or ()
            ]

    @property
    def holding(self) -> bool:
        """Whether a connection is kept."""
        return self._pg is not None or self._sqlite is not None

    async def record(self, sent: Sent) -> None:
        """Record what the platform took; raises only if the worker-thread path fails too."""
        if not sent:
            return
        async with self._lock:
            if self._postgres:
                if await self._record_postgres(sent_params(sent)):
                    return
            elif self._record_sqlite_now(sent_params(sent)):
                return
        await asyncio.to_thread(self._fallback.record, sent)

    async def aclose(self) -> None:
        """Close the kept connection (none kept: nothing to do)."""
        async with self._lock:
            pg, self._pg = self._pg, None
            if pg is not None:
                await pg.close()
            self._close_sqlite()

    # -- PostgreSQL --------------------------------------------------------------------------

    async def _record_postgres(self, params: list[dict[str, Any]]) -> bool:
        rows = [{**self._defaults, **p} for p in params]
        try:
            if self._pg is None or self._pg.closed:
                self._pg = await psycopg.AsyncConnection.connect(self._pg_url, autocommit=True)
            async with self._pg.cursor() as cur:
                if len(rows) == 1:
                    await cur.execute(self._sql, rows[0])
                else:
                    await cur.executemany(self._sql, rows)
        except psycopg.Error as exc:
            log.info("recording a sent message from the loop failed (%s); from a thread", exc)
            pg, self._pg = self._pg, None
            if pg is not None:
                await pg.close()
            return False
        return True

    # -- SQLite ------------------------------------------------------------------------------

    def _record_sqlite_now(self, params: list[dict[str, Any]]) -> bool:
        with writer_lock_within(self._db, WRITER_WAIT_SECONDS) as free:
            if not free:
                return False
            driver = self._sqlite_connection().connection.driver_connection
            assert driver is not None
            rows = [self._sqlite_row(p) for p in params]
            try:
                # The driver's connection is in autocommit (storage.database turns sqlite3's own
                # transaction handling off): each UPDATE commits by itself, with no BEGIN and
                # COMMIT around it, as on PostgreSQL; it fails at once if another process
                # writes (busy_timeout 0).
                if len(rows) == 1:
                    driver.execute(self._sql, rows[0])
                else:
                    driver.executemany(self._sql, rows)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                    raise
                return False
        return True

    def _sqlite_row(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """`RECORD_SENT`'s positional parameters, as SQLAlchemy would bind them (dates as
        SQLAlchemy writes them to SQLite, so that they read back and compare alike)."""
        values = {**self._defaults, **params}
        return tuple(
            process(values[name]) if process is not None else values[name]
            for name, process in self._sqlite_binds
        )

    def _sqlite_connection(self) -> Connection:
        if self._sqlite is None:
            conn = self._db.connect()
            # On the driver's connection: through SQLAlchemy each would begin a transaction.
            _pragmas(conn, busy_timeout=0, wal_autocheckpoint=0)
            self._sqlite = conn
        return self._sqlite

    def _close_sqlite(self) -> None:
        conn, self._sqlite = self._sqlite, None
        if conn is None:
            return
        try:  # back to the pool as every other connection is
            _pragmas(conn, busy_timeout=SQLITE_BUSY_TIMEOUT_MS, wal_autocheckpoint=1000)
        except Exception:
            conn.invalidate()  # not reusable as it is: the pool opens a fresh one instead
        finally:
            conn.close()


def _pragmas(conn: Connection, **values: int) -> None:
    driver = conn.connection.driver_connection
    assert driver is not None
    for name, value in values.items():
        driver.execute(f"PRAGMA {name}={value}")
