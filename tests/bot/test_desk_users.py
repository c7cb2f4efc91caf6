"""Desk users: adding, refusing bad input, signing in, sessions ending, the cookie key."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from sqlmodel import col, select

from bot import desk_users
from bot.app import App
from bot.desk_users import (
    DeskAccount,
    SignInRefused,
    add_user,
    authenticate,
    get_user,
    list_users,
    reset_password,
    session_account,
    session_secret,
    set_disabled,
)
from bot.errors import DeskUserError
from storage.database import open_database, transaction
from storage.tables import DeskUser, WebSecret

PASSWORD = "correct horse battery"


def _stored(app: App) -> list[tuple[str, str, str, int]]:
    with transaction(app.db) as s:
        rows = s.exec(select(DeskUser).order_by(col(DeskUser.email))).all()
        return [(r.email, r.role, r.password_hash, r.session_epoch) for r in rows]


def test_a_user_is_added_with_a_lower_case_email_and_only_an_argon2id_hash(
    any_db_app: App,
) -> None:
    ana = add_user(any_db_app.db, email="  Ana@Example.COM ", role="admin", password=PASSWORD)
    assert (ana.email, ana.role, ana.disabled, ana.session_epoch, ana.last_login_at) == (
        "ana@example.com",
        "admin",
        False,
        0,
        None,
    )
    assert ana.is_admin and ana.actor == "desk:ana@example.com"
    bob = add_user(any_db_app.db, email="bob@localhost", role="Support", password=PASSWORD)
    assert not bob.is_admin and bob.role == "support"
    [(email, role, password_hash, epoch), _] = _stored(any_db_app)
    assert (email, role, epoch) == ("ana@example.com", "admin", 0)
    assert password_hash.startswith("$argon2id$") and PASSWORD not in password_hash
    assert PasswordHasher().verify(password_hash, PASSWORD)
    assert list_users(any_db_app.db) == [ana, bob]
    assert get_user(any_db_app.db, email="ANA@example.com") == ana
    assert get_user(any_db_app.db, email="zoe@example.com") is None


@pytest.mark.parametrize(
    ("email", "role", "password", "message"),
    [
        ("ana", "admin", PASSWORD, "'ana' is not an e-mail address (like ana@example.com)"),
        ("ana @example.com", "admin", PASSWORD, "is not an e-mail address"),
        ("ana@exa mple.com", "admin", PASSWORD, "is not an e-mail address"),
        ("@example.com", "admin", PASSWORD, "is not an e-mail address"),
        ("a" * 250 + "@example.com", "admin", PASSWORD, "is not an e-mail address"),
        ("ana@example.com", "boss", PASSWORD, "unknown role 'boss': use admin or support"),
        ("ana@example.com", "admin", "7-chars", "too short: at least 8 characters"),
        ("ana@example.com", "admin", "x" * 1025, "too long: at most 1024 characters"),
        ("ana@example.com", "admin", " " * 10, "the password is only spaces"),
        ("ZOE@example.com", "support", PASSWORD, "there is already a desk user zoe@example.com"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_stores_nothing(
    app: App, email: str, role: str, password: str, message: str
) -> None:
    add_user(app.db, email="zoe@example.com", role="admin", password=PASSWORD)
    before = _stored(app)
    with pytest.raises(DeskUserError, match=re.escape(message)):
        add_user(app.db, email=email, role=role, password=password)
    assert _stored(app) == before


def test_the_right_password_signs_in_and_records_when(any_db_app: App) -> None:
    add_user(any_db_app.db, email="ana@example.com", role="support", password=PASSWORD)
    signed = authenticate(any_db_app.db, email=" ANA@example.com", password=PASSWORD)
    assert isinstance(signed, DeskAccount)
    assert signed.email == "ana@example.com" and signed.last_login_at is not None
    assert list_users(any_db_app.db) == [signed]


def test_a_wrong_password_and_an_unknown_email_are_refused_alike(app: App) -> None:
    add_user(app.db, email="ana@example.com", role="support", password=PASSWORD)
    before = _stored(app)
    assert authenticate(app.db, email="ana@example.com", password=PASSWORD + "!") is (
        SignInRefused.WRONG
    )
    assert authenticate(app.db, email="bob@example.com", password=PASSWORD) is (SignInRefused.WRONG)
    assert authenticate(app.db, email="", password="") is SignInRefused.WRONG
    assert authenticate(app.db, email="ana@example.com", password="x" * 5000) is (
        SignInRefused.WRONG
    )
    assert _stored(app) == before
    assert list_users(app.db)[0].last_login_at is None


def test_an_unknown_email_costs_a_password_check_like_a_known_one(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's timing must not tell which addresses have users: both verify a hash."""
    checked: list[str] = []

    class Recording(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            checked.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(desk_users, "_HASHER", Recording())
    add_user(app.db, email="ana@example.com", role="support", password=PASSWORD)
    authenticate(app.db, email="ana@example.com", password="wrong password")
    authenticate(app.db, email="bob@example.com", password="wrong password")
    [(_, _, ana_hash, _)] = _stored(app)
    assert checked[0] == ana_hash
    assert len(checked) == 2 and checked[1].startswith("$argon2id$") and checked[1] != ana_hash


def test_a_disabled_user_is_told_so_only_with_the_right_password(any_db_app: App) -> None:
    add_user(any_db_app.db, email="ana@example.com", role="support", password=PASSWORD)
    off = set_disabled(any_db_app.db, email="Ana@example.com", disabled=True)
    assert off.disabled and off.session_epoch == 1
    assert authenticate(any_db_app.db, email="ana@example.com", password=PASSWORD) is (
        SignInRefused.DISABLED
    )
    assert authenticate(any_db_app.db, email="ana@example.com", password="not it at all") is (
        SignInRefused.WRONG
    )
    assert list_users(any_db_app.db)[0].last_login_at is None
    on = set_disabled(any_db_app.db, email="ana@example.com", disabled=False)
    assert not on.disabled and on.session_epoch == 1
    assert isinstance(
        authenticate(any_db_app.db, email="ana@example.com", password=PASSWORD), DeskAccount
    )


def test_a_hash_made_with_older_parameters_is_renewed_at_sign_in(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_users, "_HASHER", PasswordHasher())  # the real cost (conftest: cheap)
    add_user(app.db, email="ana@example.com", role="support", password=PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with transaction(app.db) as s:
        row = s.exec(select(DeskUser)).one()
        row.password_hash = weak
        s.add(row)
    signed = authenticate(app.db, email="ana@example.com", password=PASSWORD)
    assert isinstance(signed, DeskAccount)
    [(_, _, renewed, epoch)] = _stored(app)
    assert renewed != weak and not PasswordHasher().check_needs_rehash(renewed)
    assert PasswordHasher().verify(renewed, PASSWORD)
    # The same password, only stored better: open sessions stay valid.
    assert epoch == 0 and session_account(app.db, user_id=signed.id, epoch=0) == signed


def test_a_change_while_the_password_is_checked_voids_the_sign_in(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset or a disable that lands between the password check and the record wins."""
    add_user(app.db, email="ana@example.com", role="support", password=PASSWORD)
    change: list[str] = []

    class Racing(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            ok = super().verify(hash, password)
            if change == ["reset"]:
                reset_password(app.db, email="ana@example.com", password="a brand new one")
            elif change == ["disable"]:
                set_disabled(app.db, email="ana@example.com", disabled=True)
            change.clear()
            return ok

    monkeypatch.setattr(desk_users, "_HASHER", Racing())
    change.append("reset")
    assert authenticate(app.db, email="ana@example.com", password=PASSWORD) is (SignInRefused.WRONG)
    change.append("disable")
    assert authenticate(app.db, email="ana@example.com", password="a brand new one") is (
        SignInRefused.DISABLED
    )
    assert list_users(app.db)[0].last_login_at is None


def test_a_reset_ends_sessions_and_only_the_new_password_signs_in(any_db_app: App) -> None:
    ana = add_user(any_db_app.db, email="ana@example.com", role="admin", password=PASSWORD)
    assert session_account(any_db_app.db, user_id=ana.id, epoch=0) == ana
    reset = reset_password(any_db_app.db, email="ANA@example.com", password="new password 2")
    assert reset.session_epoch == 1
    assert session_account(any_db_app.db, user_id=ana.id, epoch=0) is None
    assert authenticate(any_db_app.db, email="ana@example.com", password=PASSWORD) is (
        SignInRefused.WRONG
    )
    signed = authenticate(any_db_app.db, email="ana@example.com", password="new password 2")
    assert isinstance(signed, DeskAccount) and signed.session_epoch == 1
    assert session_account(any_db_app.db, user_id=ana.id, epoch=1) == signed


def test_sessions_of_disabled_and_unknown_users_are_refused(app: App) -> None:
    ana = add_user(app.db, email="ana@example.com", role="admin", password=PASSWORD)
    assert session_account(app.db, user_id=ana.id + 1, epoch=0) is None
    assert session_account(app.db, user_id=ana.id, epoch=1) is None
    set_disabled(app.db, email="ana@example.com", disabled=True)
    set_disabled(app.db, email="ana@example.com", disabled=False)
    # Enabled again, but the sessions signed before the disable stay ended.
    assert session_account(app.db, user_id=ana.id, epoch=0) is None
    assert session_account(app.db, user_id=ana.id, epoch=1) is not None


def test_changes_to_an_unknown_user_or_with_a_short_password_are_refused(app: App) -> None:
    add_user(app.db, email="ana@example.com", role="admin", password=PASSWORD)
    before = _stored(app)
    with pytest.raises(DeskUserError, match=re.escape("no desk user 'bob@example.com'")):
        set_disabled(app.db, email="bob@example.com", disabled=True)
    with pytest.raises(DeskUserError, match=re.escape("no desk user 'bob@example.com'")):
        reset_password(app.db, email="bob@example.com", password=PASSWORD)
    with pytest.raises(DeskUserError, match="too short"):
        reset_password(app.db, email="ana@example.com", password="short")
    with pytest.raises(DeskUserError, match="not an e-mail address"):
        set_disabled(app.db, email="nobody", disabled=True)
    assert _stored(app) == before


def test_the_cookie_key_is_the_configured_one_else_made_once_and_shared(any_db_app: App) -> None:
    assert session_secret(any_db_app.db, "from-the-config") == "from-the-config"
    with transaction(any_db_app.db) as s:
        assert s.exec(select(WebSecret)).all() == []
    made = session_secret(any_db_app.db, None)
    assert len(made) >= 43 and session_secret(any_db_app.db, "") == made
    # Another process on the same database reads the same key.
    other = open_database(str(any_db_app.db.url.render_as_string(hide_password=False)))
    try:
        assert session_secret(other, None) == made
    finally:
        other.dispose()
    with transaction(any_db_app.db) as s:
        assert [(w.name, w.value) for w in s.exec(select(WebSecret))] == [("desk_session", made)]
