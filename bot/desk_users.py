"""The people who sign in to the web desk: add, list, disable/enable, reset, authenticate.

Passwords are hashed with argon2id (argon2-cffi's `PasswordHasher`, RFC 9106 low-memory
parameters); only the hash is stored. Each user has a `session_epoch` that a reset or a disable
bumps: a session cookie carries the epoch it was signed with, and `session_account` refuses a
cookie whose epoch is no longer current, so those changes end every open session at once.

Every function is synchronous and does database work (and hashing, ~50 ms); async callers run
them in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.errors import DeskUserError
from storage import desk_users as users_q
from storage.database import Database, transaction
from storage.desk_users import StoredDeskUser
from storage.tables import DeskRole
from storage.web_secrets import shared_secret

MIN_PASSWORD = 8
# Long enough for any passphrase or manager-made password; bounds what one sign-in may cost.
MAX_PASSWORD = 1024
MAX_EMAIL = 254
ACTOR_PREFIX = "desk:"
SESSION_SECRET_NAME = "desk_session"
# A local part without spaces or '@', then a host name of letters, digits and hyphens in
# dot-separated labels (a dot is not required: admin@localhost is a fine address on an intranet).
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*")

_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class DeskAccount:
    """What the web side knows of a desk user (never the password hash)."""

    id: int
    email: str
    role: str
    disabled: bool
    session_epoch: int
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_admin(self) -> bool:
        """Whether this user may manage users and API keys."""
        return self.role == DeskRole.ADMIN

    @property
    def actor(self) -> str:
        """How this user's actions are recorded: `desk:<email>`."""
        return f"{ACTOR_PREFIX}{self.email}"


class SignInRefused(StrEnum):
    """Why a sign-in failed: the e-mail or password is wrong, or the (right) user is disabled."""

    WRONG = "wrong"
    DISABLED = "disabled"


def _account(user: StoredDeskUser) -> DeskAccount:
    return DeskAccount(
        id=user.id,
        email=user.email,
        role=user.role,
        disabled=user.disabled_at is not None,
        session_epoch=user.session_epoch,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def normal_email(email: str) -> str:
    """The e-mail as stored (trimmed, lower-case); DeskUserError when it is not an address."""
    cleaned = email.strip().lower()
    if len(cleaned) > MAX_EMAIL or not _EMAIL.fullmatch(cleaned):
        raise DeskUserError(f"{email.strip()!r} is not an e-mail address (like ana@example.com)")
    return cleaned


def _role(role: str) -> str:
    try:
        return DeskRole(role.strip().lower()).value
    except ValueError:
        roles = " or ".join(r.value for r in DeskRole)
        raise DeskUserError(f"unknown role {role!r}: use {roles}") from None


def _hashed_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise DeskUserError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise DeskUserError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if not password.strip():
        raise DeskUserError("the password is only spaces")
    return _HASHER.hash(password)


def add_user(db: Database, *, email: str, role: str, password: str) -> DeskAccount:
    """Make a desk user; DeskUserError for a bad e-mail, an unknown role, a short password or
    an e-mail that already has a user."""
    address = normal_email(email)
    role_value = _role(role)
    password_hash = _hashed_password(password)  # outside the transaction: hashing is slow
    with transaction(db) as session:
        user = users_q.add_desk_user(
            session, email=address, role=role_value, password_hash=password_hash, now=_now()
        )
    if user is None:
        raise DeskUserError(f"there is already a desk user {address}")
    return _account(user)


def list_users(db: Database) -> list[DeskAccount]:
    """Every desk user by e-mail, disabled ones included."""
    with transaction(db) as session:
        return [_account(u) for u in users_q.list_desk_users(session)]


def get_user(db: Database, *, email: str) -> DeskAccount | None:
    """The user with this e-mail (any case), disabled or not; None when there is none."""
    with transaction(db) as session:
        user = users_q.desk_user_by_email(session, email=email.strip().lower())
    return _account(user) if user is not None else None


def _unknown(email: str) -> DeskUserError:
    return DeskUserError(f"no desk user {email.strip()!r} (cxbot users list shows them)")


def set_disabled(db: Database, *, email: str, disabled: bool) -> DeskAccount:
    """Disable a user (they cannot sign in and their sessions end) or enable them again;
    DeskUserError when there is no such user."""
    address = normal_email(email)
    with transaction(db) as session:
        user = users_q.set_desk_user_disabled(
            session, email=address, disabled_at=_now() if disabled else None
        )
    if user is None:
        raise _unknown(email)
    return _account(user)


def reset_password(db: Database, *, email: str, password: str) -> DeskAccount:
    """Give a user a new password and end their sessions; DeskUserError for a short password
    or an unknown user."""
    address = normal_email(email)
    password_hash = _hashed_password(password)
    with transaction(db) as session:
        user = users_q.set_desk_user_password(session, email=address, password_hash=password_hash)
    if user is None:
        raise _unknown(email)
    return _account(user)


def end_sessions(db: Database, *, user_id: int) -> None:
    """End all of a user's sessions (sign-out): a copy of their cookie stops working too."""
    with transaction(db) as session:
        users_q.end_desk_user_sessions(session, user_id=user_id)


@cache
def _dummy_hash() -> str:
    # Checked against when the e-mail is unknown, so that a wrong e-mail takes as long as a
    # wrong password and the time of an answer does not tell which addresses have users.
    return _HASHER.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(db: Database, *, email: str, password: str) -> DeskAccount | SignInRefused:
    """The account when e-mail and password match an enabled user (its sign-in recorded, its
    hash renewed when the hashing parameters changed); else why not. DISABLED is only said to
    someone who knew the password, so it tells a guesser nothing."""
    dummy = _dummy_hash()
    if len(password) > MAX_PASSWORD:
        return SignInRefused.WRONG
    address = email.strip().lower()
    with transaction(db) as session:
        user = users_q.desk_user_by_email(session, email=address)
    # Hashing happens outside the transaction: it is slow, and SQLite has one writer.
    if not _verify(user.password_hash if user is not None else dummy, password) or user is None:
        return SignInRefused.WRONG
    if user.disabled_at is not None:
        return SignInRefused.DISABLED
    new_hash = _HASHER.hash(password) if _HASHER.check_needs_rehash(user.password_hash) else None
    with transaction(db) as session:
        signed_in = users_q.record_desk_login(
            session,
            user_id=user.id,
            verified_hash=user.password_hash,
            now=_now(),
            new_hash=new_hash,
        )
        now_stored = (
            users_q.desk_user_by_id(session, user_id=user.id) if signed_in is None else None
        )
    if signed_in is not None:
        return _account(signed_in)
    # Changed while the password was being checked: disabled (the password was right), or
    # reset or removed (this password is no longer the one).
    if now_stored is not None and now_stored.password_hash == user.password_hash:
        return SignInRefused.DISABLED
    return SignInRefused.WRONG


def session_account(db: Database, *, user_id: int, epoch: int) -> DeskAccount | None:
    """The account a session cookie stands for; None when the user is gone or disabled, or
    the password was reset (or the user disabled) since the cookie was signed."""
    with transaction(db) as session:
        user = users_q.desk_user_by_id(session, user_id=user_id)
    if user is None or user.disabled_at is not None or user.session_epoch != epoch:
        return None
    return _account(user)


def session_secret(db: Database, configured: str | None) -> str:
    """The key that signs desk session cookies: `[desk] session_secret` when configured, else
    one made once and kept in the database, so every process of a deployment uses the same."""
    if configured:
        return configured
    with transaction(db) as session:
        return shared_secret(
            session, name=SESSION_SECRET_NAME, candidate=secrets.token_urlsafe(32), now=_now()
        )
