"""Several read-only queries on one snapshot of the database, side by side where the database
can: what a page made of independent aggregates (the analytics page) needs to answer fast.

PostgreSQL runs each query on one core; a page of five aggregates over 100,000 responses is
three times faster with its queries on separate connections at once. To keep the figures
consistent with each other, a leading REPEATABLE READ transaction exports its snapshot
(`pg_export_snapshot()`, as `pg_dump --jobs` does) and every other read imports it (`SET
TRANSACTION SNAPSHOT`): they all see the database as of the same instant. JIT compilation is
turned off in these transactions (for queries of a few hundred milliseconds PostgreSQL's JIT
spends seconds compiling: the invitation funnel's subplans cross its cost threshold), and sorts
get 32 MB of memory instead of spilling to disk at 4 MB.

SQLite has one writer and little to gain from threads: the reads run one after another in one
read-only transaction (`read_transaction`: a WAL snapshot that holds back no writer).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from storage.database import read_transaction

T = TypeVar("T")
# What pg_export_snapshot() returns ("00000003-0000001B-1"): checked before it is put in SQL.
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+(-[0-9A-F]+)+$")
WORKERS = 3  # connections at once per call: more only queue for the same cores


def _settings(conn: Connection | Session) -> None:
    conn.execute(text("SET LOCAL jit = off"))
    # Sorts and hash tables of a few megabytes in memory rather than spilled to disk.
    conn.execute(text("SET LOCAL work_mem = '32MB'"))


def _imported(engine: Engine, snapshot: str, read: Callable[[Session], T]) -> T:
    with engine.connect() as raw:
        conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Must be the transaction's first statement.
            conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            _settings(conn)
            with Session(bind=conn) as session:
                return read(session)


def read_together(engine: Engine, reads: Sequence[Callable[[Session], Any]]) -> list[Any]:
    """Each read's result, in order, every read seeing the same snapshot (module doc)."""
    if engine.dialect.name != "postgresql" or len(reads) < 2:
        with read_transaction(engine) as session:
            if engine.dialect.name == "postgresql":
                _settings(session)
            return [read(session) for read in reads]
    with engine.connect() as raw:
        conn = raw.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            if not _SNAPSHOT_ID.match(snapshot):
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            _settings(conn)
            # The leading transaction stays open until every other read has run: an exported
            # snapshot can be imported only while its transaction lasts.
            with ThreadPoolExecutor(max_workers=WORKERS - 1) as pool:
                futures = [pool.submit(_imported, engine, snapshot, r) for r in reads[1:]]
                with Session(bind=conn) as session:
                    first = reads[0](session)
                return [first, *(f.result() for f in futures)]
