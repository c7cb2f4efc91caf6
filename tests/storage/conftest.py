"""Fixtures of the storage tests: a migrated engine on each database, and one on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from storage.database import open_database
from tests.conftest import _postgres_database


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """A migrated engine on SQLite and, when reachable, PostgreSQL."""
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_db() -> Iterator[Engine]:
    """A fresh PostgreSQL database (the test is skipped when the server is not reachable)."""
    for url in _postgres_database():
        engine = open_database(url)
        try:
            yield engine
        finally:
            engine.dispose()
