"""Database engines and schema migration: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, InvalidatePoolError, NoSuchModuleError, SQLAlchemyError
from sqlmodel import Session as Session  # re-exported: the type of `transaction`'s sessions
from sqlmodel import create_engine

from storage.errors import StorageError

log = logging.getLogger(__name__)

# What the layers above write in their type hints, so that only storage imports SQLAlchemy:
# an open database (an engine with its pool) and, from `transaction`, a session.
Database = Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every cxbot process sharing a database.
_PG_MIGRATION_LOCK = 0x63786274


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def database_password(url: str) -> str | None:
    """The URL's password, if any (for the log redaction to know it)."""
    try:
        password = make_url(url).password
    except ArgumentError:
        return None
    return str(password) if password else None


SQLITE_BUSY_TIMEOUT_MS = 10000  # how long a SQLite statement waits for another writer


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Python's sqlite3 module (before 3.12's autocommit attribute) opens transactions lazily and
    # never for SAVEPOINT, so a savepoint would commit on its own and survive a rollback of the
    # turn around it. Turning its implicit handling off and beginning explicitly (_sqlite_begin)
    # gives real transactions.
    dbapi_conn.isolation_level = None
    # WAL lets readers (reports) run while the bot writes; busy_timeout waits out short locks
    # instead of failing a customer's turn.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


READ_ONLY = "cxbot_read_only"  # execution option of `read_transaction`'s connection


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: two turns never both read and then fail to upgrade
    # to writing (SQLITE_BUSY); the second waits up to busy_timeout instead. A read-only
    # transaction begins deferred: in WAL mode it reads a snapshot and locks out no writer.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`; SQLite files (and their folder) are created on first use."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"invalid database URL {url!r}") from None
    kwargs: dict[str, Any] = {"echo": echo}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create data directory {folder}: {exc.strerror}"
                ) from None
        # The engine runs turns in worker threads; SQLite connections may cross threads safely
        # because the pool hands each to one thread at a time.
        kwargs["connect_args"] = {"check_same_thread": False}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StorageError(f"cannot use database URL {safe_url(url)}: {exc}") from None
    except ImportError as exc:
        # A known dialect whose driver is not installed (mysql:// without mysqlclient).
        raise StorageError(
            f"cannot use database URL {safe_url(url)}: its driver is not installed "
            f"({exc}); cxbot supports SQLite and PostgreSQL (postgresql+psycopg://…)"
        ) from None
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0
_IDLE_SINCE = "cxbot_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    SQLAlchemy's `pool_pre_ping` pings before every check-out: a round trip per transaction,
    ~13 % of a turn's time on PostgreSQL. A connection that is used again within seconds is
    alive as far as a ping could tell; the ones that go stale (a server restarted, a firewall
    that forgets quiet connections) sat idle. One that dies while busy fails its statement,
    SQLAlchemy then replaces every connection of the pool, and the work is retried (a turn by
    the inbox worker, a delivery by the outbox) — nothing is lost.
    """

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # just opened (connected moments ago), or back from work moments ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the driver's own error: the connection is unusable
            raise InvalidatePoolError(f"stale pooled connection: {exc}") from exc
        if not alive:
            raise InvalidatePoolError("stale pooled connection")

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _alembic_config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to call from several processes at once."""
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Two processes starting together must not both run the same migration.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            command.upgrade(_alembic_config(conn), "head")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StorageError(
            f"cannot reach or migrate the database {safe_url(str(engine.url))}: {reason}"
        ) from None


def open_database(url: str, *, echo: bool = False) -> Engine:
    """Create the engine and migrate: what every command does before touching data."""
    engine = create_db_engine(url, echo=echo)
    migrate(engine)
    return engine


def ping(engine: Engine) -> None:
    """Check that the database answers (health checks); StorageError when it does not."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StorageError(
            f"database {safe_url(str(engine.url))} does not answer: {reason}"
        ) from None


# SQLite has one writer at a time. Threads of one process take turns on this lock instead of
# on SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and so turns a queue
# of a few short transactions into long tail latencies.
_SQLITE_LOCKS: WeakKeyDictionary[Engine, threading.RLock] = WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[object]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _LOCKS_GUARD:
        return _SQLITE_LOCKS.setdefault(engine, threading.RLock())


@contextmanager
def writer_lock_within(engine: Engine, seconds: float) -> Iterator[bool]:
    """Hold SQLite's process-wide writer lock if it comes within `seconds` (yields True), else
    give up (yields False: another thread of this process is writing). On PostgreSQL there is
    no such lock: always True."""
    lock = _writer_lock(engine)
    if not isinstance(lock, type(threading.RLock())):
        yield True
        return
    held = lock.acquire(timeout=seconds)
    try:
        yield held
    finally:
        if held:
            lock.release()


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Session]:
    """A session for reads only, on one snapshot, that holds back no writer: on SQLite a
    deferred transaction without the process's writer lock (WAL readers see the database as of
    their first read), on PostgreSQL a plain transaction. Nothing is committed."""
    with engine.connect() as raw:
        conn = raw.execution_options(**{READ_ONLY: True})
        with Session(bind=conn, expire_on_commit=False) as session:
            try:
                yield session
            finally:
                session.rollback()


@contextmanager
def core_transaction(engine: Engine) -> Iterator[Connection]:
    """`transaction` for Core statements only: a connection, no ORM session around it (one
    write of the hot path — an inbox batch, a delivery record — costs less without one)."""
    with _writer_lock(engine), engine.begin() as conn:
        yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits together at the end, or not at all on error."""
    with (
        _writer_lock(engine),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session
