"""The desk inside `cxbot serve`: mounted at /desk on the one HTTP server (unless disabled),
a reply delivered on the customer's channel by the delivery worker, and each desk action shown
on the item's Slack alert at once — one state, two views."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.fakes.desk_scenario import desk_serving
from tests.fakes.serving import running
from tests.fakes.slack_setup import wait_until
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import telegram_settings

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="([^"]+)"')


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> None:
    form = await http.get("/desk/login")
    token = _TOKEN.search(form.text)
    assert token is not None
    answer = await http.post(
        "/desk/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, answer.text


async def send(http: httpx.AsyncClient, review_id: int, action: str, **fields: str) -> None:
    page = await http.get(f"/desk/items/{review_id}")
    token, version = _TOKEN.search(page.text), _VERSION.search(page.text)
    assert token is not None and version is not None
    answer = await http.post(
        f"/desk/items/{review_id}/{action}",
        data={"csrf_token": token.group(1), "version": version.group(1), **fields},
    )
    assert answer.status_code == 303, answer.text


async def test_serve_mounts_the_desk_and_desk_actions_reach_slack_and_the_customer(
    tmp_path: Path,
) -> None:
    async with desk_serving(tmp_path) as stage:
        review_id = await stage.flag(42, name="Bo", score=2, comment="awful app")
        stage.add_user("ana@example.com", "support", "correct horse battery")
        async with httpx.AsyncClient(base_url=stage.url) as http:
            assert (await http.get("/desk/queue")).status_code == 303
            await sign_in(http, "ana@example.com", "correct horse battery")
            queue = await http.get("/desk/queue")
            assert f'href="/desk/items/{review_id}"' in queue.text and "awful app" in queue.text

            await send(http, review_id, "acknowledge")
            await wait_until(
                lambda: any("ana@example.com" in u for u in stage.alert_updates(review_id)),
                timeout=10,
                what="the Slack alert to show the desk's acknowledgement",
            )
            sent = len(stage.telegram.sent(42))
            await send(http, review_id, "reply", text="Sorry, Bo: it is fixed now.")
            texts = await stage.telegram.wait_texts(42, sent + 1, timeout=10)
            assert texts[-1] == "Sorry, Bo: it is fixed now."
            await send(http, review_id, "resolve", note="fixed in 2.4.1")
            await wait_until(
                lambda: any("fixed in 2.4.1" in u for u in stage.alert_updates(review_id)),
                timeout=10,
                what="the Slack alert to show the resolution",
            )


async def test_the_desk_is_not_served_when_disabled(tmp_path: Path) -> None:
    with FakeTelegramAPI() as telegram:
        settings = telegram_settings(telegram, tmp_path, desk__enabled="false", server__port="0")
        async with running(settings) as (_app, url), httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/desk/login")).status_code == 404
            assert (await http.get("/healthz")).status_code == 200
