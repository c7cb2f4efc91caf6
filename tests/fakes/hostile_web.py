"""Every HTTP route of `cxbot serve` in one in-process app, for hostile-input tests.

`all_routes` mounts what `serve` mounts — `/healthz`, `POST /slack/events` (a real Bolt
AsyncApp whose Web API is the loopback `FakeSlackAPI`), `POST /telegram/webhook` (the real
route and `raw_update`) and the REST API under `/api/v1` — behind the same `build_web_app`,
so its body limit applies. What the channels would record in the inbox is kept in `recorded`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import SlackChannel
from adapters.telegram import raw_update
from bot.api_keys import KeyChecker
from bot.app import App
from bot.invitations.service import Invitations
from bot.invitations.suppression import SuppressionList
from bot.messages import RawUpdate
from bot.privacy import PrivacyRequests
from storage.database import ping
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlackAPI, dm_event, sign
from web.api import API_MAX_BODY_BYTES, API_PREFIX, build_api
from web.server import (
    TELEGRAM_SECRET_HEADER,
    Mount,
    Route,
    build_web_app,
    telegram_webhook_route,
)

SLACK_PATH = "/slack/events"
TELEGRAM_SECRET = "tg-webhook-secret"


@dataclass
class Routes:
    """The app, and the updates its channels recorded."""

    web: FastAPI
    recorded: list[RawUpdate] = field(default_factory=list)


def all_routes(app: App, fake: FakeSlackAPI) -> Routes:
    """`build_web_app` with the Slack, Telegram, API and health routes, as `serve` has them."""
    routes = Routes(web=FastAPI())

    async def record(updates: Sequence[RawUpdate]) -> int:
        routes.recorded.extend(updates)
        return len(updates)

    async def feed(data: dict[str, Any]) -> None:
        routes.recorded.append(raw_update(data))  # as TelegramChannel.feed_webhook does

    async def database() -> None:
        await asyncio.to_thread(ping, app.db)

    bolt = AsyncApp(
        client=AsyncWebClient(token=fake.token, base_url=fake.base_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,
    )
    slack = SlackChannel(bolt, record)
    invitations = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=("telegram", "slack"),
    )
    api = build_api(
        invitations=invitations,
        keys=KeyChecker(app.db),
        suppressions=SuppressionList(app.db),
        privacy=PrivacyRequests(app.db),
    )
    routes.web = build_web_app(
        routes=[
            Route(path=SLACK_PATH, endpoint=slack.http_endpoint),
            telegram_webhook_route(secret_token=TELEGRAM_SECRET, feed=feed),
        ],
        health_checks={"database": database},
        mounts=[Mount(API_PREFIX, api, max_body_bytes=API_MAX_BODY_BYTES)],
    )
    return routes


def signed_headers(body: bytes, *, content_type: str = "application/json") -> dict[str, str]:
    """Headers of a request Slack signed now."""
    return {"Content-Type": content_type, **sign(body)}


def slack_message(text: str = "hello", *, event_id: str = "Ev-ok") -> bytes:
    """A direct message event's body, as Slack posts it."""
    return json.dumps(dm_event("U0ANN0001", text, event_id=event_id)).encode()


def telegram_headers() -> dict[str, str]:
    """Headers Telegram sends with the configured secret."""
    return {TELEGRAM_SECRET_HEADER: TELEGRAM_SECRET, "Content-Type": "application/json"}


def telegram_message(update_id: int = 1, **message: Any) -> bytes:
    """A private text message update; `message` overrides its fields."""
    base: dict[str, Any] = {
        "message_id": 1,
        "date": int(datetime.now(UTC).timestamp()),
        "chat": {"id": 42, "type": "private", "first_name": "Ann"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
        "text": "hello",
    }
    return json.dumps({"update_id": update_id, "message": {**base, **message}}).encode()
