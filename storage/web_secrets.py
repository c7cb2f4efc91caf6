"""Queries on web secrets: values every process of one deployment must share (the desk's
session cookie key), made once by whichever process asks first."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from storage.tables import WebSecret

_TABLE = WebSecret.__table__  # type: ignore[attr-defined]


def shared_secret(session: Session, *, name: str, candidate: str, now: datetime) -> str:
    """The secret stored under `name`; `candidate` is stored first when there is none. Two
    processes asking at once both get the one that was stored first (insert-or-ignore)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(_TABLE)
        .values(name=name, value=candidate, created_at=now.astimezone(UTC))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.exec(select(WebSecret.value).where(WebSecret.name == name)).one()
