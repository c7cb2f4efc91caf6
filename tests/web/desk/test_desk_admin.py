"""The admin pages: desk users and API keys. Support users are refused (403) on every one."""

from __future__ import annotations

import re

import pytest

from bot.api_keys import KeyChecker, Scope, create_key, list_keys
from bot.desk_users import DeskAccount, list_users
from tests.web.desk.conftest import ADMIN, PASSWORD, SUPPORT, Desk

ADMIN_PAGES = ["/desk/users", "/desk/apikeys"]
ADMIN_FORMS = {
    "/desk/users": {"email": "new@example.com", "role": "admin", "password": PASSWORD},
    "/desk/users/disable": {"email": ADMIN},
    "/desk/users/enable": {"email": ADMIN},
    "/desk/users/reset": {"email": ADMIN, "password": "another passphrase"},
    "/desk/apikeys": {"scope": "admin", "name": "sneaky"},
    "/desk/apikeys/revoke": {"prefix": "cxk_12345678"},
}


def users(desk: Desk) -> dict[str, tuple[str, bool]]:
    return {u.email: (u.role, u.disabled) for u in list_users(desk.app.db)}


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_support_users_are_refused_admin_pages(
    as_support: Desk, admin: DeskAccount, path: str
) -> None:
    answer = await as_support.client.get(path)
    assert answer.status_code == 403
    assert "This page is for admins only" in answer.text
    queue = await as_support.client.get("/desk/queue")
    assert 'href="/desk/users"' not in queue.text  # and not offered them


@pytest.mark.parametrize("path", sorted(ADMIN_FORMS))
async def test_support_users_are_refused_admin_forms_and_nothing_changes(
    as_support: Desk, admin: DeskAccount, path: str
) -> None:
    before = users(as_support)
    answer = await as_support.post(path, ADMIN_FORMS[path])
    assert answer.status_code == 403
    assert users(as_support) == before
    assert list_keys(as_support.app.db) == []


@pytest.mark.parametrize("path", sorted(ADMIN_FORMS))
async def test_admin_forms_without_the_csrf_token_are_403(as_admin: Desk, path: str) -> None:
    before = users(as_admin)
    answer = await as_admin.client.post(path, data=ADMIN_FORMS[path])
    assert answer.status_code == 403
    assert users(as_admin) == before
    assert list_keys(as_admin.app.db) == []


async def test_the_users_page_lists_everyone(as_admin: Desk, support: DeskAccount) -> None:
    page = await as_admin.client.get("/desk/users")
    assert page.status_code == 200
    assert ADMIN in page.text and SUPPORT in page.text
    assert "(you)" in page.text


async def test_an_admin_adds_a_user_who_can_then_sign_in(as_admin: Desk) -> None:
    answer = await as_admin.post(
        "/desk/users",
        {"email": "Cy@Example.com", "role": "support", "password": "a long passphrase"},
        page="/desk/users",
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/desk/users"
    page = await as_admin.client.get("/desk/users")
    assert "Added cy@example.com (support)." in page.text
    assert users(as_admin)["cy@example.com"] == ("support", False)
    await as_admin.client.post(
        "/desk/logout", data={"csrf_token": await as_admin.csrf("/desk/queue")}
    )
    assert (await as_admin.sign_in("cy@example.com", "a long passphrase")).status_code == 303


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": ADMIN, "role": "support", "password": PASSWORD}, "already a desk user"),
        ({"email": "cy@example.com", "role": "support", "password": "short"}, "too short"),
        ({"email": "not an address", "role": "support", "password": PASSWORD}, "not an e-mail"),
        ({"email": "cy@example.com", "role": "owner", "password": PASSWORD}, "Role must be one of"),
        ({"email": "", "role": "support", "password": PASSWORD}, "E-mail is empty"),
    ],
)
async def test_adding_a_bad_user_is_400_and_adds_nobody(
    as_admin: Desk, fields: dict[str, str], message: str
) -> None:
    before = users(as_admin)
    answer = await as_admin.post("/desk/users", fields, page="/desk/users")
    assert answer.status_code == 400
    assert message in answer.text
    assert users(as_admin) == before


async def test_disable_and_enable_a_user(as_admin: Desk, support: DeskAccount) -> None:
    answer = await as_admin.post("/desk/users/disable", {"email": SUPPORT}, page="/desk/users")
    assert answer.status_code == 303
    assert users(as_admin)[SUPPORT] == ("support", True)
    page = await as_admin.client.get("/desk/users")
    assert f"{SUPPORT} is disabled; their sessions have ended." in page.text
    answer = await as_admin.post("/desk/users/enable", {"email": SUPPORT}, page="/desk/users")
    assert answer.status_code == 303
    assert users(as_admin)[SUPPORT] == ("support", False)


async def test_an_admin_cannot_disable_themselves(as_admin: Desk) -> None:
    answer = await as_admin.post("/desk/users/disable", {"email": ADMIN}, page="/desk/users")
    assert answer.status_code == 400
    assert "You cannot disable your own account" in answer.text
    assert users(as_admin)[ADMIN] == ("admin", False)


async def test_changing_an_unknown_user_is_400(as_admin: Desk) -> None:
    answer = await as_admin.post(
        "/desk/users/disable", {"email": "ghost@example.com"}, page="/desk/users"
    )
    assert answer.status_code == 400
    assert "no desk user" in answer.text


async def test_reset_a_password(as_admin: Desk, desk: Desk, support: DeskAccount) -> None:
    answer = await as_admin.post(
        "/desk/users/reset",
        {"email": SUPPORT, "password": "a brand new one"},
        page="/desk/users",
    )
    assert answer.status_code == 303
    short = await as_admin.post(
        "/desk/users/reset", {"email": SUPPORT, "password": "short"}, page="/desk/users"
    )
    assert short.status_code == 400 and "too short" in short.text
    await as_admin.client.post(
        "/desk/logout", data={"csrf_token": await as_admin.csrf("/desk/queue")}
    )
    assert (await desk.sign_in(SUPPORT, PASSWORD)).status_code == 401
    assert (await desk.sign_in(SUPPORT, "a brand new one")).status_code == 303


async def test_resetting_ones_own_password_keeps_ones_session(as_admin: Desk) -> None:
    answer = await as_admin.post(
        "/desk/users/reset", {"email": ADMIN, "password": "my new passphrase"}, page="/desk/users"
    )
    assert answer.status_code == 303
    assert (await as_admin.client.get("/desk/users")).status_code == 200


async def test_an_api_key_is_shown_once_and_works(as_admin: Desk) -> None:
    answer = await as_admin.post(
        "/desk/apikeys", {"scope": "invite", "name": "helpdesk"}, page="/desk/apikeys"
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    shown = re.search(r'<code class="secret">(cxk_[A-Za-z0-9_-]{43})</code>', answer.text)
    assert shown is not None
    key = shown.group(1)
    (stored,) = list_keys(as_admin.app.db)
    assert (stored.name, stored.scope) == ("helpdesk", "invite")
    assert KeyChecker(as_admin.app.db).check_sync(key).id == stored.id
    listing = await as_admin.client.get("/desk/apikeys")
    assert key not in listing.text and f"{stored.prefix}…" in listing.text
    assert key not in str(as_admin.client.cookies)  # never through the (signed) cookie


async def test_a_bad_key_name_is_400(as_admin: Desk) -> None:
    answer = await as_admin.post(
        "/desk/apikeys", {"scope": "invite", "name": "cli"}, page="/desk/apikeys"
    )
    assert answer.status_code == 400
    assert "reserved" in answer.text
    assert list_keys(as_admin.app.db) == []


async def test_revoke_a_key_and_a_second_revoke_is_409(as_admin: Desk) -> None:
    made = create_key(as_admin.app.db, scope=Scope.ADMIN, name="ops")
    prefix = made.stored.prefix
    answer = await as_admin.post("/desk/apikeys/revoke", {"prefix": prefix}, page="/desk/apikeys")
    assert answer.status_code == 303
    (stored,) = list_keys(as_admin.app.db)
    assert stored.revoked_at is not None
    page = await as_admin.client.get("/desk/apikeys")
    assert f"Key {prefix}… (ops) is revoked." in page.text
    again = await as_admin.post("/desk/apikeys/revoke", {"prefix": prefix}, page="/desk/apikeys")
    assert again.status_code == 409
    assert "Nothing was revoked" in again.text
    bad = await as_admin.post("/desk/apikeys/revoke", {"prefix": "ops"}, page="/desk/apikeys")
    assert bad.status_code == 400
