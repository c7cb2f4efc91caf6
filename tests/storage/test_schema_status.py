"""Where a database's schema stands, read without migrating it (for `cxbot doctor`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.database import create_db_engine
from storage.errors import StorageError
from storage.schema_status import schema_status


def test_a_migrated_database_is_at_head(db: Engine) -> None:
    status = schema_status(db)
    assert status.at_head and status.current is not None


def test_an_empty_database_has_no_revision_and_stays_empty(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert schema_status(engine).current is None
        assert schema_status(engine).current is None  # reading did not migrate it
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_storage_error() -> None:
    engine = create_db_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(StorageError, match="does not answer"):
            schema_status(engine)
    finally:
        engine.dispose()
