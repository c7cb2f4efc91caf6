"""Desk user and web secret queries on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select

from storage.database import transaction
from storage.desk_users import (
    StoredDeskUser,
    add_desk_user,
    desk_user_by_email,
    desk_user_by_id,
    list_desk_users,
    record_desk_login,
    set_desk_user_disabled,
    set_desk_user_password,
)
from storage.tables import DeskUser, WebSecret
from storage.web_secrets import shared_secret

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _add(db: Engine, email: str, *, role: str = "support", h: str = "hash-1") -> StoredDeskUser:
    with transaction(db) as s:
        user = add_desk_user(s, email=email, role=role, password_hash=h, now=T0)
    assert user is not None
    return user


def test_a_user_is_stored_and_found_by_email_and_id_and_listed_by_email(db: Engine) -> None:
    zoe = _add(db, "zoe@example.com", role="admin")
    ana = _add(db, "ana@example.com", h="hash-ana")
    assert ana == StoredDeskUser(
        id=ana.id,
        email="ana@example.com",
        role="support",
        password_hash="hash-ana",
        session_epoch=0,
        disabled_at=None,
        created_at=T0,
        last_login_at=None,
    )
    with transaction(db) as s:
        assert desk_user_by_email(s, email="ana@example.com") == ana
        assert desk_user_by_id(s, user_id=zoe.id) == zoe
        assert desk_user_by_email(s, email="bob@example.com") is None
        assert desk_user_by_id(s, user_id=zoe.id + ana.id) is None
        assert [u.email for u in list_desk_users(s)] == ["ana@example.com", "zoe@example.com"]


def test_a_taken_email_adds_nothing_and_keeps_the_first_user(db: Engine) -> None:
    first = _add(db, "ana@example.com", role="admin", h="first")
    with transaction(db) as s:
        again = add_desk_user(
            s, email="ana@example.com", role="support", password_hash="second", now=T0
        )
        assert again is None
        assert list_desk_users(s) == [first]


def test_disabling_ends_sessions_once_and_keeps_the_first_time_enabling_keeps_the_epoch(
    db: Engine,
) -> None:
    _add(db, "ana@example.com")
    with transaction(db) as s:
        off = set_desk_user_disabled(s, email="ana@example.com", disabled_at=T0)
    assert off is not None and (off.disabled_at, off.session_epoch) == (T0, 1)
    with transaction(db) as s:
        again = set_desk_user_disabled(
            s, email="ana@example.com", disabled_at=T0 + timedelta(days=1)
        )
    # Still disabled since the first time; the epoch moves on (no session can exist anyway).
    assert again is not None and again.disabled_at == T0
    with transaction(db) as s:
        on = set_desk_user_disabled(s, email="ana@example.com", disabled_at=None)
        stored = s.exec(select(DeskUser)).one()
    assert on is not None and on.disabled_at is None and on.session_epoch == again.session_epoch
    assert stored.disabled_at is None
    with transaction(db) as s:
        assert set_desk_user_disabled(s, email="bob@example.com", disabled_at=T0) is None
        assert set_desk_user_disabled(s, email="bob@example.com", disabled_at=None) is None


def test_a_new_password_hash_bumps_the_session_epoch(db: Engine) -> None:
    _add(db, "ana@example.com", h="old")
    with transaction(db) as s:
        reset = set_desk_user_password(s, email="ana@example.com", password_hash="new")
        assert set_desk_user_password(s, email="bob@example.com", password_hash="x") is None
    assert reset is not None and (reset.password_hash, reset.session_epoch) == ("new", 1)
    with transaction(db) as s:
        assert desk_user_by_email(s, email="ana@example.com") == reset


def test_a_sign_in_is_recorded_only_while_the_checked_hash_is_current_and_the_user_enabled(
    db: Engine,
) -> None:
    ana = _add(db, "ana@example.com", h="checked")
    later = T0 + timedelta(hours=2)
    with transaction(db) as s:
        signed = record_desk_login(
            s, user_id=ana.id, verified_hash="checked", now=later, new_hash="stronger"
        )
    assert signed is not None
    assert (signed.last_login_at, signed.password_hash, signed.session_epoch) == (
        later,
        "stronger",
        0,
    )
    with transaction(db) as s:
        # The hash changed since the password was checked (a reset): nothing is recorded.
        assert record_desk_login(s, user_id=ana.id, verified_hash="checked", now=T0) is None
        set_desk_user_disabled(s, email="ana@example.com", disabled_at=T0)
        assert record_desk_login(s, user_id=ana.id, verified_hash="stronger", now=T0) is None
        assert record_desk_login(s, user_id=ana.id + 1, verified_hash="x", now=T0) is None
        stored = desk_user_by_id(s, user_id=ana.id)
    assert stored is not None and (stored.last_login_at, stored.password_hash) == (
        later,
        "stronger",
    )


def test_a_shared_secret_is_made_once_and_then_read(db: Engine) -> None:
    with transaction(db) as s:
        first = shared_secret(s, name="desk_session", candidate="one", now=T0)
    with transaction(db) as s:
        second = shared_secret(s, name="desk_session", candidate="two", now=T0)
        other = shared_secret(s, name="other", candidate="three", now=T0)
        rows = {r.name: r.value for r in s.exec(select(WebSecret))}
    assert (first, second, other) == ("one", "one", "three")
    assert rows == {"desk_session": "one", "other": "three"}


def test_processes_adding_at_once_agree_on_one_user_and_one_secret(pg_db: Engine) -> None:
    """Two connections racing on PostgreSQL: the unique keys pick one winner, no errors."""
    start = threading.Barrier(4)
    users: list[StoredDeskUser | None] = []
    secrets: list[str] = []

    def add_user(h: str) -> None:
        start.wait()
        with transaction(pg_db) as s:
            users.append(
                add_desk_user(s, email="ana@example.com", role="admin", password_hash=h, now=T0)
            )

    def make_secret(candidate: str) -> None:
        start.wait()
        with transaction(pg_db) as s:
            secrets.append(shared_secret(s, name="desk_session", candidate=candidate, now=T0))

    threads = [threading.Thread(target=add_user, args=(h,)) for h in ("a", "b")]
    threads += [threading.Thread(target=make_secret, args=(c,)) for c in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [u for u in users if u is not None]
    assert len(users) == 2 and len(winners) == 1
    assert len(secrets) == 2 and secrets[0] == secrets[1] in ("x", "y")
    with transaction(pg_db) as s:
        assert list_desk_users(s) == winners
        assert s.exec(select(WebSecret.value)).all() == [secrets[0]]
