"""Signing in and out of the desk: the form's contract, sessions, CSRF, the sign-in limit, and
what an unauthenticated request to each route gets."""

from __future__ import annotations

import re

import pytest

from bot.desk_users import DeskAccount, list_users, reset_password, set_disabled
from tests.web.desk.conftest import ADMIN, PASSWORD, SUPPORT, Desk

PAGES = [
    "/desk/",
    "/desk/queue",
    "/desk/queue?status=open",
    "/desk/items/1",
    "/desk/items/nope",
    "/desk/users",
    "/desk/apikeys",
    "/desk/no-such-page",
]
FORMS = [
    "/desk/logout",
    "/desk/items/1/acknowledge",
    "/desk/items/1/assign",
    "/desk/items/1/resolve",
    "/desk/items/1/reply",
    "/desk/items/1/reopen",
    "/desk/items/1/label",
    "/desk/users",
    "/desk/users/disable",
    "/desk/users/enable",
    "/desk/users/reset",
    "/desk/apikeys",
    "/desk/apikeys/revoke",
]


def signed_in_as(desk: Desk, email: str) -> bool:
    """Whether the client's session is signed in as `email` (checked by a page)."""
    return any(u.email == email and u.last_login_at is not None for u in list_users(desk.app.db))


async def test_the_sign_in_form_has_the_contract_fields_and_a_safe_cookie(desk: Desk) -> None:
    page = await desk.client.get("/desk/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    form = re.search(r'<form method="post" action="/desk/login".*?</form>', page.text, re.S)
    assert form is not None
    names = set(re.findall(r'name="([^"]+)"', form.group(0)))
    assert names == {"email", "password", "csrf_token"}
    cookie = page.headers["set-cookie"].lower()
    assert "cxbot_desk=" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/desk" in cookie
    assert "secure" not in cookie  # [desk] cookie_secure is off by default
    # Assets come from the desk itself, and the page forbids anything else.
    assert 'href="/desk/static/desk.css"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    css = await desk.client.get("/desk/static/desk.css")
    assert css.status_code == 200 and "@media" in css.text
    js = await desk.client.get("/desk/static/desk.js")
    assert js.status_code == 200 and "data-once" in js.text
    missing = await desk.client.get("/desk/static/nope.css")
    assert missing.status_code == 404  # an asset that is not there: no sign-in detour


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_sends_strangers_to_the_sign_in_form(desk: Desk, path: str) -> None:
    answer = await desk.client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/desk/login?next=/desk/")


@pytest.mark.parametrize("path", FORMS)
async def test_every_form_refuses_strangers_with_401(desk: Desk, path: str) -> None:
    token = await desk.csrf()  # even with a valid token: nobody is signed in
    answer = await desk.client.post(path, data={"csrf_token": token, "version": "x"})
    assert answer.status_code == 401
    assert "Sign in first" in answer.text


async def test_signing_in_goes_to_the_queue_and_records_the_sign_in(
    desk: Desk, admin: DeskAccount
) -> None:
    answer = await desk.sign_in(" Ana@Example.com ")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/queue"
    queue = await desk.client.get("/desk/queue")
    assert queue.status_code == 200
    assert ADMIN in queue.text
    assert signed_in_as(desk, ADMIN)


async def test_sign_in_goes_on_to_the_page_asked_for_but_never_elsewhere(
    desk: Desk, admin: DeskAccount
) -> None:
    first = await desk.client.get("/desk/queue?status=open")
    assert first.headers["location"] == "/desk/login?next=/desk/queue%3Fstatus%3Dopen"
    form = await desk.client.get(first.headers["location"])
    assert 'name="next" value="/desk/queue?status=open"' in form.text
    token = await desk.csrf()
    data = {"email": ADMIN, "password": PASSWORD, "csrf_token": token}
    answer = await desk.client.post("/desk/login", data={**data, "next": "/desk/queue?status=open"})
    assert answer.headers["location"] == "/desk/queue?status=open"
    for elsewhere in ("https://evil.example/desk/", "//evil.example/desk/", "/api/v1/x"):
        await desk.client.post("/desk/logout", data={"csrf_token": await desk.csrf("/desk/queue")})
        token = await desk.csrf()
        answer = await desk.client.post(
            "/desk/login", data={**data, "csrf_token": token, "next": elsewhere}
        )
        assert answer.headers["location"] == "/desk/queue"


@pytest.mark.parametrize(
    ("email", "password"),
    [(ADMIN, "wrong password"), ("nobody@example.com", PASSWORD), (ADMIN, PASSWORD.upper())],
)
async def test_a_wrong_e_mail_or_password_gets_the_form_again_with_401(
    desk: Desk, admin: DeskAccount, email: str, password: str
) -> None:
    answer = await desk.sign_in(email, password)
    assert answer.status_code == 401
    assert "Wrong e-mail or password." in answer.text
    assert 'name="password"' in answer.text
    assert f'value="{email}"' in answer.text  # the e-mail is kept, the password is not
    assert password not in answer.text
    assert (await desk.client.get("/desk/queue")).status_code == 303
    assert not signed_in_as(desk, ADMIN)


async def test_an_empty_form_is_a_400_that_says_what_is_missing(
    desk: Desk, admin: DeskAccount
) -> None:
    token = await desk.csrf()
    answer = await desk.client.post("/desk/login", data={"email": ADMIN, "csrf_token": token})
    assert answer.status_code == 400
    assert "Enter your e-mail and your password." in answer.text


async def test_a_disabled_user_is_told_so_with_401(desk: Desk, support: DeskAccount) -> None:
    set_disabled(desk.app.db, email=SUPPORT, disabled=True)
    answer = await desk.sign_in(SUPPORT)
    assert answer.status_code == 401
    assert "This account is disabled" in answer.text
    assert (await desk.client.get("/desk/queue")).status_code == 303


async def test_sign_in_without_the_forms_token_is_refused_with_403(
    desk: Desk, admin: DeskAccount
) -> None:
    data = {"email": ADMIN, "password": PASSWORD}
    no_session = await desk.client.post("/desk/login", data={**data, "csrf_token": "made-up"})
    assert no_session.status_code == 403
    await desk.csrf()  # now the session has a token, but the form does not send it
    missing = await desk.client.post("/desk/login", data=data)
    assert missing.status_code == 403
    assert "security token is missing" in missing.text
    wrong = await desk.client.post("/desk/login", data={**data, "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert "does not match" in wrong.text
    assert not signed_in_as(desk, ADMIN)


async def test_too_many_failed_sign_ins_get_429_until_the_window_passes(
    desk: Desk, admin: DeskAccount, limiter_clock: list[float]
) -> None:
    for _ in range(3):  # the fixture's limit: 3 failures in 15 minutes
        assert (await desk.sign_in(ADMIN, "wrong password")).status_code == 401
    blocked = await desk.sign_in(ADMIN)  # even the right password
    assert blocked.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes." in blocked.text
    assert int(blocked.headers["retry-after"]) == 900
    assert not signed_in_as(desk, ADMIN)
    limiter_clock[0] += 15 * 60 + 1
    assert (await desk.sign_in(ADMIN)).status_code == 303


async def test_one_address_guessing_many_accounts_is_limited_too(
    desk: Desk, admin: DeskAccount
) -> None:
    for n in range(3):
        assert (await desk.sign_in(f"guess{n}@example.com", "x" * 9)).status_code == 401
    assert (await desk.sign_in(ADMIN)).status_code == 429


async def test_a_session_ends_after_session_hours(desk: Desk, admin: DeskAccount) -> None:
    await desk.sign_in(ADMIN)
    desk.clock.advance(hours=desk.app.settings.desk.session_hours - 0.1)
    assert (await desk.client.get("/desk/queue")).status_code == 200
    desk.clock.advance(hours=0.2)
    answer = await desk.client.get("/desk/queue")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/desk/login")
    form = await desk.client.get(answer.headers["location"])
    assert "Your session has expired; sign in again." in form.text
    assert (await desk.client.get("/desk/queue")).status_code == 303  # ended for good


@pytest.mark.parametrize("change", ["disable", "reset"])
async def test_disabling_or_resetting_a_user_ends_their_session(
    desk: Desk, support: DeskAccount, change: str
) -> None:
    await desk.sign_in(SUPPORT)
    assert (await desk.client.get("/desk/queue")).status_code == 200
    if change == "disable":
        set_disabled(desk.app.db, email=SUPPORT, disabled=True)
    else:
        reset_password(desk.app.db, email=SUPPORT, password="a new passphrase")
    answer = await desk.client.get("/desk/queue")
    assert answer.status_code == 303
    form = await desk.client.get(answer.headers["location"])
    assert "Your session has ended" in form.text
    posted = await desk.client.post("/desk/items/1/acknowledge", data={"version": "x"})
    assert posted.status_code == 401


async def test_a_tampered_cookie_is_no_session(desk: Desk, admin: DeskAccount) -> None:
    await desk.sign_in(ADMIN)
    value = desk.client.cookies["cxbot_desk"]
    desk.client.cookies.clear()
    desk.client.cookies.set("cxbot_desk", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert (await desk.client.get("/desk/queue")).status_code == 303


async def test_signing_out_ends_the_session(desk: Desk, admin: DeskAccount) -> None:
    await desk.sign_in(ADMIN)
    token = await desk.csrf("/desk/queue")
    copied = dict(desk.client.cookies)  # a copy of the cookie, kept elsewhere
    refused = await desk.client.post("/desk/logout")  # without the token
    assert refused.status_code == 403
    assert (await desk.client.get("/desk/queue")).status_code == 200
    answer = await desk.client.post("/desk/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/login"
    form = await desk.client.get("/desk/login")
    assert "You are signed out." in form.text
    assert (await desk.client.get("/desk/queue")).status_code == 303
    # The copy stopped working too: signing out ended every session of the account.
    desk.client.cookies.clear()
    desk.client.cookies.update(copied)
    assert (await desk.client.get("/desk/queue")).status_code == 303


async def test_the_front_door_leads_to_the_queue_and_the_form_to_it_when_signed_in(
    as_admin: Desk,
) -> None:
    front = await as_admin.client.get("/desk/")
    assert front.status_code == 303 and front.headers["location"] == "/desk/queue"
    again = await as_admin.client.get("/desk/login")
    assert again.status_code == 303 and again.headers["location"] == "/desk/queue"


async def test_a_signed_in_user_gets_404_for_an_unknown_page(as_support: Desk) -> None:
    answer = await as_support.client.get("/desk/no-such-page")
    assert answer.status_code == 404
    assert "There is no such page." in answer.text
