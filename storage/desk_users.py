"""Queries on desk users: the people who sign in to the web desk. Passwords are hashed by the
caller (bot.desk_users); nothing here sees a password itself. E-mails arrive lower-cased."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.tables import DeskUser, as_utc

_TABLE = DeskUser.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredDeskUser:
    """A desk user's row as plain values (times timezone-aware UTC)."""

    id: int
    email: str
    role: str
    password_hash: str
    session_epoch: int
    disabled_at: datetime | None
    created_at: datetime
    last_login_at: datetime | None


def _stored(row: DeskUser) -> StoredDeskUser:
    assert row.id is not None
    created = as_utc(row.created_at)
    assert created is not None
    return StoredDeskUser(
        id=row.id,
        email=row.email,
        role=row.role,
        password_hash=row.password_hash,
        session_epoch=row.session_epoch,
        disabled_at=as_utc(row.disabled_at),
        created_at=created,
        last_login_at=as_utc(row.last_login_at),
    )


def add_desk_user(
    session: Session, *, email: str, role: str, password_hash: str, now: datetime
) -> StoredDeskUser | None:
    """Store a new user; None when the e-mail is taken (two adds at once: one wins, no error)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(_TABLE)
        .values(
            email=email,
            role=role,
            password_hash=password_hash,
            session_epoch=0,
            created_at=now.astimezone(UTC),
        )
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(_TABLE.c.id)
    )
    new_id = session.execute(stmt).scalar()
    return desk_user_by_id(session, user_id=new_id) if new_id is not None else None


def desk_user_by_email(session: Session, *, email: str) -> StoredDeskUser | None:
    """The user with this (lower-case) e-mail, disabled or not."""
    row = session.exec(select(DeskUser).where(DeskUser.email == email)).first()
    return _stored(row) if row is not None else None


def desk_user_by_id(session: Session, *, user_id: int) -> StoredDeskUser | None:
    """The user with this id, disabled or not."""
    row = session.get(DeskUser, user_id)
    return _stored(row) if row is not None else None


def list_desk_users(session: Session) -> list[StoredDeskUser]:
    """Every user, by e-mail, disabled ones included."""
    return [_stored(r) for r in session.exec(select(DeskUser).order_by(col(DeskUser.email)))]


def set_desk_user_disabled(
    session: Session, *, email: str, disabled_at: datetime | None
) -> StoredDeskUser | None:
    """Disable (a time) or enable (None) the user; disabling also ends their sessions by
    bumping `session_epoch`. A user disabled already keeps the time it was first disabled.
    None when there is no such user."""
    user = desk_user_by_email(session, email=email)
    if user is None:
        return None
    if disabled_at is None:
        values: dict[str, object] = {"disabled_at": None}
    else:
        values = {
            "disabled_at": user.disabled_at or disabled_at.astimezone(UTC),
            "session_epoch": DeskUser.session_epoch + 1,
        }
    session.execute(update(DeskUser).where(col(DeskUser.id) == user.id).values(**values))
    session.expire_all()
    return desk_user_by_id(session, user_id=user.id)


def set_desk_user_password(
    session: Session, *, email: str, password_hash: str
) -> StoredDeskUser | None:
    """Store a new password hash and end the user's sessions (bump `session_epoch`); None
    when there is no such user."""
    user = desk_user_by_email(session, email=email)
    if user is None:
        return None
    session.execute(
        update(DeskUser)
        .where(col(DeskUser.id) == user.id)
        .values(
            password_hash=password_hash,
            session_epoch=DeskUser.session_epoch + 1,
        )
    )
    session.expire_all()
    return desk_user_by_id(session, user_id=user.id)


def end_desk_user_sessions(session: Session, *, user_id: int) -> None:
    """End every session of the user (bump `session_epoch`): signing out on one device signs
    out a copy of the cookie too."""
    session.execute(
        update(DeskUser)
        .where(col(DeskUser.id) == user_id)
        .values(session_epoch=DeskUser.session_epoch + 1)
    )


def record_desk_login(
    session: Session,
    *,
    user_id: int,
    verified_hash: str,
    now: datetime,
    new_hash: str | None = None,
) -> StoredDeskUser | None:
    """Record a sign-in (and a stronger hash of the same password, when given) — only if the
    user is still enabled and the password hash is still the one the password was checked
    against: a disable or reset in between makes the sign-in void (None)."""
    values: dict[str, object] = {"last_login_at": now.astimezone(UTC)}
    if new_hash is not None:
        values["password_hash"] = new_hash
    result = session.execute(
        update(DeskUser)
        .where(
            col(DeskUser.id) == user_id,
            col(DeskUser.password_hash) == verified_hash,
            col(DeskUser.disabled_at).is_(None),
        )
        .values(**values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    session.expire_all()
    return desk_user_by_id(session, user_id=user_id)
