"""Engines, migrations and the transaction helper, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from storage import conversations, customers, database, flow_versions
from storage.database import (
    MIGRATIONS_DIR,
    Database,
    create_db_engine,
    migrate,
    open_database,
    safe_url,
    transaction,
)
from storage.errors import StorageError
from storage.tables import ConversationState


def test_migrations_create_every_table(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"customer", "flowversion", "conversation", "answer", "reviewitem"} <= tables
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        migrate(engine)  # running again is a no-op
    finally:
        engine.dispose()


def test_migrations_match_the_table_models(database_url: str) -> None:
    """A change to storage/tables.py without a migration fails here."""
    engine = open_database(database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        # Type differences between equivalent spellings (TEXT vs AutoString) are not drift.
        assert [d for d in diffs if not (isinstance(d, list) and d[0][0] == "modify_type")] == []
    finally:
        engine.dispose()


def test_sqlite_file_and_folder_are_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "cxbot.db"
    engine = open_database(f"sqlite:///{path}")
    try:
        assert path.exists()
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_unreachable_database_gives_one_clear_error() -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    url = "postgresql+psycopg://cxbot:s3cret@127.0.0.1:1/cxbot"
    with pytest.raises(StorageError) as err:
        open_database(url)
    message = str(err.value)
    assert message.startswith(
        "cannot reach or migrate the database postgresql+psycopg://cxbot:***@"
    )
    assert "s3cret" not in message


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_invalid_urls_are_reported(url: str) -> None:
    with pytest.raises(StorageError):
        create_db_engine(url)


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql://u:pw@h/d") == "postgresql://u:***@h/d"


def test_transaction_rolls_back_everything_on_error(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        with pytest.raises(RuntimeError), transaction(engine) as session:
            customers.upsert_customer(session, channel="console", external_id="ann")
            raise RuntimeError("crash mid-turn")
        with transaction(engine) as session:
            assert customers.get_customer(session, channel="console", external_id="ann") is None
    finally:
        engine.dispose()


def test_one_active_conversation_per_customer_is_enforced(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        with transaction(engine) as session:
            cust = customers.upsert_customer(session, channel="console", external_id="bo")
            assert cust.id is not None
            v = flow_versions.publish_flow_version(session, flow_id="f", checksum="c", source="s")
            kwargs = dict(
                customer_id=cust.id,
                channel="console",
                flow_id="f",
                flow_version=v.version,
                locale="en",
                context={},
            )
            first = conversations.start_conversation(session, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(IntegrityError), transaction(engine) as session:
            conversations.start_conversation(session, **kwargs)  # type: ignore[arg-type]
        with transaction(engine) as session:
            conversations.end_conversation(
                session, conversation=first, state=ConversationState.COMPLETED
            )
            second = conversations.start_conversation(session, **kwargs)  # type: ignore[arg-type]
            assert second.id != first.id
    finally:
        engine.dispose()


def test_flow_versions_increase_only_when_content_changes(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        with transaction(engine) as session:
            v1 = flow_versions.publish_flow_version(session, flow_id="f", checksum="a", source="1")
            again = flow_versions.publish_flow_version(
                session, flow_id="f", checksum="a", source="1"
            )
            v2 = flow_versions.publish_flow_version(session, flow_id="f", checksum="b", source="2")
        assert (v1.version, again.version, v2.version) == (1, 1, 2)
        with transaction(engine) as session:
            stored = flow_versions.get_flow_version(session, flow_id="f", version=1)
            assert stored is not None and stored.source == "1"
    finally:
        engine.dispose()


def test_a_rolled_back_turn_forgets_its_event_id(database_url: str) -> None:
    """The dedup record and the turn commit together: a failed turn can be retried."""
    from storage.inbound import record_inbound_event

    engine = open_database(database_url)
    try:
        with pytest.raises(RuntimeError), transaction(engine) as session:
            assert record_inbound_event(session, channel="telegram", event_key="tg:1")
            raise RuntimeError("the turn failed after recording the event")
        with transaction(engine) as session:
            assert record_inbound_event(session, channel="telegram", event_key="tg:1")
            assert not record_inbound_event(session, channel="telegram", event_key="tg:1")
    finally:
        engine.dispose()


def test_a_database_whose_driver_is_not_installed_gives_one_clear_error() -> None:
    with pytest.raises(StorageError, match="its driver is not installed") as err:
        open_database("mysql://cxbot:s3cret@127.0.0.1:1/cxbot")
    assert "s3cret" not in str(err.value)


def _backend_pid(engine: Database) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine: Database, pid: int) -> None:
    # From a connection of its own, outside the pool under test.
    with create_db_engine(engine.url.render_as_string(hide_password=False)).connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()


@pytest.mark.postgres
def test_a_connection_that_died_while_idle_is_replaced_before_use(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    first = _backend_pid(pg_db)
    _terminate(pg_db, first)  # as a server restart or a firewall would, while it sat idle
    # Pinged on check-out, found dead, replaced: the work itself never sees the dead one.
    with transaction(pg_db) as s:
        assert s.execute(text("SELECT 1")).scalar_one() == 1
    assert _backend_pid(pg_db) != first


@pytest.mark.postgres
def test_a_connection_back_from_work_moments_ago_is_not_pinged(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = _backend_pid(pg_db)
    _terminate(pg_db, first)
    # Not pinged: the statement finds the connection dead, and SQLAlchemy replaces the pool's
    # connections, so the next transaction (a turn's retry) runs on a new one.
    with pytest.raises(OperationalError), transaction(pg_db) as s:
        s.execute(text("SELECT 1"))
    with transaction(pg_db) as s:
        assert s.execute(text("SELECT 1")).scalar_one() == 1
    assert _backend_pid(pg_db) != first
