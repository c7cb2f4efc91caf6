"""Bounded fuzzing of the desk: any form fields, bodies, query strings and item paths, from a
signed-in admin holding a valid CSRF token (so the routes' own checks are what is hit) — never a
5xx, and the desk still serves afterwards. `CXBOT_FUZZ_EXAMPLES` sets how many examples."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App
from bot.desk_users import add_user
from bot.desk_work import DeskWork
from tests.fakes.desk_seed import flag
from web.desk.app import DESK_PREFIX, build_desk_app
from web.server import Mount, build_web_app

FUZZ = settings(
    max_examples=int(os.environ.get("CXBOT_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELDS = ["email", "password", "role", "version", "note", "text", "assignee", "answer_id"]
FIELDS += ["label", "scope", "name", "prefix", "next"]
FORMS = [
    "/login",
    "/logout",
    "/items/1/acknowledge",
    "/items/1/assign",
    "/items/1/resolve",
    "/items/1/reply",
    "/items/1/reopen",
    "/items/1/label",
    "/users",
    "/users/disable",
    "/users/enable",
    "/users/reset",
    "/apikeys",
    "/apikeys/revoke",
]
QUERY = ["status", "reason", "flow", "channel", "touchpoint", "sentiment", "assignee", "since"]
QUERY += ["until", "low_confidence", "overdue", "order", "page"]
hostile = st.text(max_size=80) | st.sampled_from(
    ["", "0", "-1", "1", "99999999999999999999", "me", "none", "desk:x", "2026-02-30", "\x00"]
)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    asyncio.run(flag(app, "42"))
    add_user(app.db, email="ana@example.com", role="admin", password="correct horse battery")
    work = DeskWork(db=app.db, settings=app.settings.desk)
    desk = build_desk_app(db=app.db, settings=app.settings.desk, work=work)
    with TestClient(build_web_app(mounts=[Mount(DESK_PREFIX, desk)])) as c:
        form = c.get("/desk/login")
        token = _TOKEN.search(form.text)
        assert token is not None
        signed = c.post(
            "/desk/login",
            data={
                "email": "ana@example.com",
                "password": "correct horse battery",
                "csrf_token": token.group(1),
            },
            follow_redirects=False,
        )
        assert signed.status_code == 303
        yield c


def token_of(client: TestClient) -> str:
    page = client.get("/desk/queue")
    found = _TOKEN.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def still_serving(client: TestClient) -> None:
    assert client.get("/desk/queue").status_code in (200, 303)
    assert client.get("/desk/login").status_code in (200, 303)


def test_any_form_to_any_route(client: TestClient) -> None:
    token = token_of(client)

    @FUZZ
    @given(
        route=st.sampled_from(FORMS),
        fields=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), hostile, max_size=6),
        encoding=st.sampled_from(["form", "multipart", "raw"]),
        raw=st.binary(max_size=300),
    )
    def fuzz(route: str, fields: dict[str, str], encoding: str, raw: bytes) -> None:
        data = {**fields, "csrf_token": token}
        if route in ("/logout", "/users/disable", "/users/reset"):
            data.pop("email", None)  # keep the admin signed in for the next example
            data["email"] = "nobody@example.com"
        if encoding == "form":
            answer = client.post(f"/desk{route}", data=data, follow_redirects=False)
        elif encoding == "multipart":
            answer = client.post(
                f"/desk{route}",
                files={k: (None, v) for k, v in data.items()},
                follow_redirects=False,
            )
        else:
            answer = client.post(
                f"/desk{route}",
                content=raw,
                headers={"content-type": "multipart/form-data; boundary=x"},
                follow_redirects=False,
            )
        assert answer.status_code < 500, f"{route} {data!r} answered {answer.status_code}"

    fuzz()
    still_serving(client)


def test_any_queue_query_and_item_path(client: TestClient) -> None:
    @FUZZ
    @given(
        query=st.dictionaries(st.sampled_from(QUERY) | st.text(max_size=8), hostile, max_size=6),
        item=hostile,
    )
    def fuzz(query: dict[str, str], item: str) -> None:
        queue = client.get(f"/desk/queue?{urlencode(query)}", follow_redirects=False)
        assert queue.status_code in (200, 400), f"{query!r} answered {queue.status_code}"
        page = client.get(f"/desk/items/{quote(item, safe='')}", follow_redirects=False)
        assert page.status_code < 500, f"{item!r} answered {page.status_code}"

    fuzz()
    still_serving(client)
