"""Queries on API keys: add, find by prefix, list, revoke, record use. Keys are hashed by the
caller (bot.api_keys); nothing here sees a key itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage.tables import ApiKey, as_utc


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An API key's row as plain values (times timezone-aware UTC)."""

    id: int
    name: str
    scope: str
    prefix: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _stored(row: ApiKey) -> StoredKey:
    assert row.id is not None
    created = as_utc(row.created_at)
    assert created is not None
    return StoredKey(
        id=row.id,
        name=row.name,
        scope=row.scope,
        prefix=row.prefix,
        key_hash=row.key_hash,
        created_at=created,
        revoked_at=as_utc(row.revoked_at),
        last_used_at=as_utc(row.last_used_at),
    )


def add_api_key(
    session: Session, *, name: str, scope: str, prefix: str, key_hash: str, now: datetime
) -> StoredKey:
    """Store a new key's hash under its name, scope and display prefix."""
    row = ApiKey(
        name=name, scope=scope, prefix=prefix, key_hash=key_hash, created_at=now.astimezone(UTC)
    )
    session.add(row)
    session.flush()
    return _stored(row)


def prefix_taken(session: Session, *, prefix: str) -> bool:
    """Whether a key (even a revoked one) already has this prefix."""
    return session.exec(select(ApiKey.id).where(ApiKey.prefix == prefix)).first() is not None


def key_by_prefix(session: Session, *, prefix: str) -> StoredKey | None:
    """The key with this display prefix, revoked or not."""
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    return _stored(row) if row is not None else None


def list_api_keys(session: Session) -> list[StoredKey]:
    """Every key, oldest first, revoked ones included."""
    return [_stored(r) for r in session.exec(select(ApiKey).order_by(col(ApiKey.id)))]


def revoke_api_keys(session: Session, *, name_or_prefix: str, now: datetime) -> list[StoredKey]:
    """Revoke the active key with this prefix, else every active key with this name; those
    revoked (none: nothing matched)."""
    active = col(ApiKey.revoked_at).is_(None)
    rows = list(session.exec(select(ApiKey).where(active, ApiKey.prefix == name_or_prefix)))
    if not rows:
        rows = list(session.exec(select(ApiKey).where(active, ApiKey.name == name_or_prefix)))
    for row in rows:
        row.revoked_at = now.astimezone(UTC)
        session.add(row)
    session.flush()
    return [_stored(r) for r in rows]


def record_key_use(session: Session, *, key_id: int, now: datetime) -> None:
    """Remember when the key was last used."""
    session.execute(
        update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=now.astimezone(UTC))
    )
