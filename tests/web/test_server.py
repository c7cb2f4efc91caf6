"""The HTTP server: /healthz, the Telegram webhook's secret check, uvicorn on a real socket."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from web.errors import WebServerError
from web.server import (
    TELEGRAM_SECRET_HEADER,
    WebServer,
    build_web_app,
    telegram_webhook_route,
)

SECRET = "s3cret-Token_123"


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cxbot")


async def test_healthz_reports_each_check() -> None:
    async def fine() -> None:
        return None

    async def broken() -> None:
        raise RuntimeError("database does not answer")

    async with client(build_web_app(health_checks={"database": fine}, info={"x": 1})) as c:
        ok = await c.get("/healthz")
    assert (ok.status_code, ok.json()) == (
        200,
        {"status": "ok", "checks": {"database": "ok"}, "x": 1},
    )
    async with client(build_web_app(health_checks={"database": broken})) as c:
        bad = await c.get("/healthz")
    assert bad.status_code == 503
    assert bad.json()["checks"] == {"database": "failed: database does not answer"}


@pytest.fixture
def fed() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def webhook_app(fed: list[dict[str, Any]]) -> Any:
    async def feed(data: dict[str, Any]) -> None:
        if "update_id" not in data:
            raise ValueError("not a Telegram update")
        if data.get("boom"):
            raise RuntimeError("the database fell over")
        fed.append(data)

    return build_web_app(routes=[telegram_webhook_route(secret_token=SECRET, feed=feed)])


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({TELEGRAM_SECRET_HEADER: "wrong"}, 403), ({TELEGRAM_SECRET_HEADER: ""}, 403)],
)
async def test_webhook_refuses_missing_or_wrong_secrets(
    webhook_app: Any, fed: list[dict[str, Any]], headers: dict[str, str], status: int
) -> None:
    async with client(webhook_app) as c:
        response = await c.post("/telegram/webhook", json={"update_id": 1}, headers=headers)
    assert response.status_code == status
    assert fed == []


async def test_webhook_feeds_updates_and_rejects_garbage(
    webhook_app: Any, fed: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    headers = {TELEGRAM_SECRET_HEADER: SECRET}
    caplog.set_level(logging.WARNING)
    async with client(webhook_app) as c:
        ok = await c.post("/telegram/webhook", json={"update_id": 5}, headers=headers)
        not_json = await c.post("/telegram/webhook", content=b"{nope", headers=headers)
        not_object = await c.post("/telegram/webhook", json=[1, 2], headers=headers)
        not_update = await c.post("/telegram/webhook", json={"hello": 1}, headers=headers)
        wrong_method = await c.get("/telegram/webhook", headers=headers)
    assert (ok.status_code, ok.json()) == (200, {"ok": True})
    assert [not_json.status_code, not_object.status_code, not_update.status_code] == [400] * 3
    # One line each for the operator, who sees refused updates nowhere else.
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "Telegram webhook: refused a malformed update (400): body is not JSON",
        "Telegram webhook: refused a malformed update (400): body is not a JSON object",
        "Telegram webhook: refused a malformed update (400): not a Telegram update",
    ]
    assert wrong_method.status_code == 405
    assert fed == [{"update_id": 5}]


async def test_a_failing_update_is_a_server_error_so_telegram_retries(webhook_app: Any) -> None:
    transport = httpx.ASGITransport(app=webhook_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://cxbot") as c:
        response = await c.post(
            "/telegram/webhook",
            json={"update_id": 6, "boom": True},
            headers={TELEGRAM_SECRET_HEADER: SECRET},
        )
    assert response.status_code == 500


async def test_uvicorn_serves_on_a_real_socket_and_stops() -> None:
    server = WebServer(build_web_app(info={"channels": []}), host="127.0.0.1", port=0)
    await server.start()
    try:
        assert server.port != 0
        async with httpx.AsyncClient() as c:
            response = await c.get(f"{server.url}/healthz")
        assert response.json() == {"status": "ok", "checks": {}, "channels": []}
    finally:
        await server.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as c:
            await c.get(f"{server.url}/healthz")


async def test_a_busy_port_is_one_clear_error() -> None:
    first = WebServer(build_web_app(), host="127.0.0.1", port=0)
    await first.start()
    try:
        second = WebServer(build_web_app(), host="127.0.0.1", port=first.port)
        with pytest.raises(WebServerError, match=rf"cannot listen on 127.0.0.1:{first.port}"):
            await second.start()
    finally:
        await first.stop()
