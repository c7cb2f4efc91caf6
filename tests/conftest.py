"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable), settings and the app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from bot.app import App, build_app
from bot.config import Settings, load_settings

# Not a CXBOT_ name: cxbot reads every CXBOT_* variable as configuration and rejects unknown ones.
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cxbot_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.orig}")
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for an empty database: SQLite, then PostgreSQL when reachable."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'cxbot.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults with the data directory in a temporary folder (SQLite)."""
    return load_settings(None, environ={"CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    """The wired application on a fresh SQLite database."""
    application = build_app(settings)
    yield application
    application.close()


@pytest.fixture
def any_db_app(database_url: str, tmp_path: Path) -> Iterator[App]:
    """The wired application on each available database."""
    s = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_DATABASE__URL": database_url,
        },
    )
    application = build_app(s)
    yield application
    application.close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's config.toml, CXBOT_* variables or data directory."""
    for name in list(os.environ):
        if name.startswith("CXBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its real cost takes a few tenths of a second per hash on this machine; the
    desk's tests sign in hundreds of times. Same algorithm (argon2id), low cost parameters."""
    from argon2 import PasswordHasher

    import bot.desk_users

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(bot.desk_users, "_HASHER", cheap)
