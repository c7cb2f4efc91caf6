"""What bench/telegram.py measures inside the bot's process, besides CPU and wall time.

- `LoopLag`: a task that asks to wake every 5 ms and records how late each wake-up comes — how
  long something else held the event loop (a callback, a thread holding the interpreter lock).
- `SqlCounter`: the SQL statements cxbot's engine sends, split by the part of cxbot whose
  thread sent them. A statement is what reaches the database driver: each cursor execute
  (SQLite's `BEGIN IMMEDIATE` and SAVEPOINTs included; an executemany counts once), each COMMIT
  and ROLLBACK, and on PostgreSQL each transaction's BEGIN (psycopg sends it before the first
  statement); a connection in autocommit sends none of those three (the inbox records a
  batch so on PostgreSQL). `attribute_sql_to_workers()` wraps, in this process only, the
  methods cxbot runs in worker threads so that a thread-local label says whose statement it is:

  - `turn`: `bot.inbox.InboxWorker._process_batch` — one transaction of the inbox worker (claim
    and mark processed, the turns of the updates it took, their outbox rows). A call that found
    nothing due counts apart (`idle claims`), so "SQL per turn" is the statements of the calls
    that took something ÷ the updates they took (a group of updates shares BEGIN, the claim and
    COMMIT);
  - `record`: `bot.inbox.Inbox._record` — a getUpdates batch stored in the inbox;
  - `delivery`: the delivery worker's claims, records of what was sent (also those made from
    the event loop: `storage.loop_records`; on PostgreSQL those go through psycopg's
    asynchronous connection, unseen by SQLAlchemy, and are counted one per row), and lease
    upkeep;
  - `other`: anything else (start-up, housekeeping).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

PARTS = ("turn", "record", "delivery", "other")
# Methods run in worker threads (asyncio.to_thread), by the part they are attributed to.
_OPTIONAL_DELIVERY = ("_claim", "_record", "_pending", "release_dead_claims")

_local = threading.local()
_active: list[SqlCounter] = []  # the counter of the cxbot now measured (one at a time)


class SqlCounter:
    """Counts the statements one engine sends, by part, from `start()` on."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.by_part: Counter[str] = Counter()
        self.turns = 0
        self.groups = 0  # inbox transactions that processed updates (a group shares one)
        self.turn_statements = 0
        self.idle_claims = 0
        self.idle_claim_statements = 0
        event.listen(engine, "before_cursor_execute", self._on_cursor_execute)
        event.listen(engine, "commit", self._on_transaction_end)
        event.listen(engine, "rollback", self._on_transaction_end)
        self._counts_begin = engine.dialect.name == "postgresql"
        if self._counts_begin:
            event.listen(engine, "begin", self._on_begin)

    def start(self) -> None:
        """Zero the counts: the measured window begins."""
        with self._lock:
            self.by_part.clear()
            self.turns = self.groups = self.turn_statements = 0
            self.idle_claims = self.idle_claim_statements = 0
        _active[:] = [self]

    def stop(self) -> None:
        """Stop attributing turns to this counter and stop listening to the engine."""
        _active[:] = []
        event.remove(self._engine, "before_cursor_execute", self._on_cursor_execute)
        event.remove(self._engine, "commit", self._on_transaction_end)
        event.remove(self._engine, "rollback", self._on_transaction_end)
        if self._counts_begin:
            event.remove(self._engine, "begin", self._on_begin)

    @property
    def total(self) -> int:
        """Statements counted since `start()`."""
        with self._lock:
            return sum(self.by_part.values())

    def add(self, part: str, statements: int) -> None:
        """Count statements sent where SQLAlchemy's events do not see them."""
        with self._lock:
            self.by_part[part] += statements

    def _count(self) -> None:
        _local.statements = getattr(_local, "statements", 0) + 1
        part = getattr(_local, "part", None) or "other"
        with self._lock:
            self.by_part[part] += 1

    def _on_cursor_execute(self, *_args: Any) -> None:
        self._count()

    def _on_transaction_end(self, conn: Any) -> None:
        if not _autocommit(conn):
            self._count()

    def _on_begin(self, conn: Any) -> None:
        if not _autocommit(conn):
            self._count()

    def _turn_done(self, statements: int, *, turns: int) -> None:
        with self._lock:
            if turns:
                self.turns += turns
                self.groups += 1
                self.turn_statements += statements
            else:
                self.idle_claims += 1
                self.idle_claim_statements += statements


def _autocommit(conn: Any) -> bool:
    """A connection in autocommit: the driver sends no BEGIN, COMMIT or ROLLBACK for it."""
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def _labelled(part: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):
        raise RuntimeError(
            f"bench: {method.__qualname__} is now a coroutine; a thread-local label cannot "
            "follow it — update bench/_probes.py's SQL attribution"
        )

    @functools.wraps(method)
    def labelled(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_local, "part", None)
        before = getattr(_local, "statements", 0)
        _local.part = outer or part  # a nested call keeps the outer label
        try:
            result = method(*args, **kwargs)
        finally:
            _local.part = outer
        if part == "turn" and outer is None and _active:
            statements = getattr(_local, "statements", 0) - before
            _active[0]._turn_done(statements, turns=len(result))
        return result

    labelled.__bench_labelled__ = True  # type: ignore[attr-defined]
    return labelled


def attribute_sql_to_workers() -> None:
    """Label the statements of cxbot's worker-thread methods (idempotent; this process only)."""
    from bot.delivery import DeliveryWorker
    from bot.inbox import Inbox, InboxWorker

    targets: list[tuple[type, str, str, bool]] = [
        (InboxWorker, "_process_batch", "turn", True),
        (Inbox, "_record", "record", True),
        *((DeliveryWorker, name, "delivery", False) for name in _OPTIONAL_DELIVERY),
    ]
    from storage.loop_records import LoopSentRecorder

    _count_loop_records(LoopSentRecorder)
    for cls, name, part, required in targets:
        method = cls.__dict__.get(name)
        if method is None:
            if required:
                raise RuntimeError(
                    f"bench: {cls.__module__}.{cls.__qualname__}.{name} is gone; update "
                    "bench/_probes.py's SQL attribution"
                )
            continue
        if getattr(method, "__bench_labelled__", False):
            continue
        setattr(cls, name, _labelled(part, method))


def _count_loop_records(cls: type) -> None:
    """The delivery worker's records made from the event loop go straight to the driver
    (psycopg's asynchronous connection, sqlite3's own), where SQLAlchemy's events never see
    them: count them here, one statement per row recorded."""
    postgres = cls.__dict__.get("_record_postgres")
    sqlite = cls.__dict__.get("_record_sqlite_now")
    if (
        postgres is None
        or sqlite is None
        or not inspect.iscoroutinefunction(postgres)
        or inspect.iscoroutinefunction(sqlite)
    ):
        raise RuntimeError(
            "bench: storage.loop_records.LoopSentRecorder's _record_postgres (a coroutine) or "
            "_record_sqlite_now is gone or changed; update bench/_probes.py's SQL attribution"
        )
    if getattr(postgres, "__bench_labelled__", False):
        return

    def count(done: bool, params: list[dict[str, Any]]) -> bool:
        if done and _active:
            _active[0].add("delivery", len(params))
        return done

    @functools.wraps(postgres)
    async def counted_postgres(self: Any, params: list[dict[str, Any]]) -> bool:
        return count(bool(await postgres(self, params)), params)

    @functools.wraps(sqlite)
    def counted_sqlite(self: Any, params: list[dict[str, Any]]) -> bool:
        return count(bool(sqlite(self, params)), params)

    counted_postgres.__bench_labelled__ = True  # type: ignore[attr-defined]
    counted_sqlite.__bench_labelled__ = True  # type: ignore[attr-defined]
    cls._record_postgres = counted_postgres  # type: ignore[attr-defined]
    cls._record_sqlite_now = counted_sqlite  # type: ignore[attr-defined]


class LoopLag:
    """How late a task that wakes every `period` seconds finds itself, while running."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start ticking in the running event loop."""
        self.lags = []
        self._task = asyncio.create_task(self._tick(), name="bench-loop-lag")

    async def stop(self) -> list[float]:
        """Stop ticking; the lag of every tick, in seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.lags

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self.period
        while True:
            await asyncio.sleep(self.period)
            now = loop.time()
            self.lags.append(max(0.0, now - due))
            due = now + self.period
