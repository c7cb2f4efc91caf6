"""Queries on the suppression list: customers who must never be invited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.tables import Suppression

_TABLE = Suppression.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredSuppression:
    """One entry of the suppression list (times timezone-aware UTC)."""

    channel: str
    external_id: str
    note: str | None
    created_by: str
    created_at: datetime


def _stored(row: Suppression) -> StoredSuppression:
    created = row.created_at
    if created.tzinfo is None:  # SQLite gives back naive datetimes; every stored time is UTC
        created = created.replace(tzinfo=UTC)
    return StoredSuppression(
        channel=row.channel,
        external_id=row.external_id,
        note=row.note,
        created_by=row.created_by,
        created_at=created,
    )


def add_suppression(
    session: Session,
    *,
    channel: str,
    external_id: str,
    note: str | None,
    created_by: str,
    now: datetime,
) -> bool:
    """Put the customer on the list; False when they were on it already (kept as it was)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(_TABLE)
        .values(
            channel=channel,
            external_id=external_id,
            note=note[:256] if note else None,
            created_by=created_by[:64],
            created_at=now.astimezone(UTC),
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(_TABLE.c.id)
    )
    return session.execute(stmt).first() is not None


def remove_suppression(session: Session, *, channel: str, external_id: str) -> bool:
    """Take the customer off the list; False when they were not on it."""
    result = session.execute(
        delete(_TABLE).where(_TABLE.c.channel == channel, _TABLE.c.external_id == external_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_suppression(
    session: Session, *, channel: str, external_id: str
) -> StoredSuppression | None:
    """The list's entry for this customer, if any."""
    row = session.exec(
        select(Suppression).where(
            Suppression.channel == channel, Suppression.external_id == external_id
        )
    ).first()
    return _stored(row) if row is not None else None


def is_suppressed(session: Session, *, channel: str, external_id: str) -> bool:
    """Whether the customer is on the suppression list."""
    return get_suppression(session, channel=channel, external_id=external_id) is not None


def list_suppressions(
    session: Session, *, channel: str | None = None, limit: int | None = None, offset: int = 0
) -> list[StoredSuppression]:
    """The list, oldest entry first (optionally one channel's, a page of it)."""
    stmt = select(Suppression).order_by(col(Suppression.id))
    if channel is not None:
        stmt = stmt.where(Suppression.channel == channel)
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_stored(row) for row in session.exec(stmt)]
