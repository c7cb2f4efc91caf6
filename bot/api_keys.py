"""API keys of the REST API: created once, stored hashed, scoped, revocable, last use recorded.

A key is `cxk_` and 43 characters of `secrets.token_urlsafe(32)`: 256 random bits. Only its
SHA-256 is stored. A slow password hash (bcrypt, argon2) exists to make guessing a *human*
password from its hash expensive; a 256-bit random key cannot be guessed whatever the hash
costs, so one fast SHA-256 is as safe and keeps every API request cheap. The first 12
characters (`cxk_` + 8) are kept in clear as the key's prefix: they name it in listings and find
its row, and the full hash is then compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.errors import CxbotError
from storage import apikeys as keys_q
from storage.apikeys import StoredKey
from storage.database import Database, transaction

KEY_MARK = "cxk_"
PREFIX_LENGTH = len(KEY_MARK) + 8
_KEY = re.compile(r"cxk_[A-Za-z0-9_-]{43}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# Sources of invitations that are not API keys; a key may not take their names.
RESERVED_NAMES = frozenset({"cli", "csv"})
# Recording every use would make every request a write; once a minute says enough.
LAST_USE_RESOLUTION = timedelta(minutes=1)


class Scope(StrEnum):
    """What a key may do: `invite` sends invitations; `admin` also edits the suppression list."""

    INVITE = "invite"
    ADMIN = "admin"


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256 (see the module's doc for why not a slow hash)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the secret (shown once) and its stored row."""

    key: str
    stored: StoredKey


def _now() -> datetime:
    return datetime.now(UTC)


def create_key(
    db: Database, *, scope: Scope, name: str | None = None, now: datetime | None = None
) -> NewKey:
    """Make a new random key of `scope`, store its hash; the key is returned only here."""
    if name is not None:
        if not _NAME.fullmatch(name):
            raise CxbotError(
                f"key name {name!r}: 1-64 of A-Z a-z 0-9 _ . @ - (starting with a letter or digit)"
            )
        if name.lower() in RESERVED_NAMES:
            raise CxbotError(f"key name {name!r} is reserved for invitations made by cxbot itself")
    moment = now or _now()
    with transaction(db) as session:
        while True:
            key = KEY_MARK + secrets.token_urlsafe(32)
            prefix = key[:PREFIX_LENGTH]
            # 48 random bits: a clash is all but impossible, but a unique prefix finds one row.
            if not keys_q.prefix_taken(session, prefix=prefix):
                break
        stored = keys_q.add_api_key(
            session,
            name=name or f"key-{prefix[len(KEY_MARK) :]}",
            scope=scope,
            prefix=prefix,
            key_hash=hash_key(key),
            now=moment,
        )
    return NewKey(key=key, stored=stored)


def list_keys(db: Database) -> list[StoredKey]:
    """Every key, oldest first (revoked ones included)."""
    with transaction(db) as session:
        return keys_q.list_api_keys(session)


def revoke_keys(
    db: Database, *, name_or_prefix: str, now: datetime | None = None
) -> list[StoredKey]:
    """Revoke the active key with this prefix, else every active key with this name."""
    with transaction(db) as session:
        return keys_q.revoke_api_keys(session, name_or_prefix=name_or_prefix, now=now or _now())


class KeyRefused(CxbotError):
    """The presented key is not valid (missing, malformed, unknown or revoked)."""


class KeyChecker:
    """Checks a presented key and records its use (at most once a minute per key)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = _now) -> None:
        self._db = db
        self._clock = clock

    def check_sync(self, key: str) -> StoredKey:
        """The valid key's row; KeyRefused saying why otherwise."""
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise KeyRefused("not a cxbot API key (they look like cxk_…, 47 characters)")
        now = self._clock()
        with transaction(self._db) as session:
            stored = keys_q.key_by_prefix(session, prefix=key[:PREFIX_LENGTH])
            if stored is None or not hmac.compare_digest(stored.key_hash, hash_key(key)):
                raise KeyRefused("unknown API key")
            if stored.revoked_at is not None:
                raise KeyRefused(f"this API key was revoked on {stored.revoked_at:%Y-%m-%d}")
            last = stored.last_used_at
            if last is None or now - last >= LAST_USE_RESOLUTION:
                keys_q.record_key_use(session, key_id=stored.id, now=now)
        return stored

    async def check(self, key: str) -> StoredKey:
        """`check_sync` in a worker thread."""
        return await asyncio.to_thread(self.check_sync, key)
