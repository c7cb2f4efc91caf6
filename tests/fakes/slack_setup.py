"""Helpers shared by the Slack tests: settings for the fake API and `serve` in HTTP mode.

Customers' events are recorded in the inbox before Slack gets its answer, then processed and
delivered in the background (inbox worker, delivery worker): `Served.event` and
`Served.interact` wait until that work is done (`settle`) unless told not to, so that a test
asserts on what the fake Slack API received and on the rows stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from adapters.retrying import RetryPolicy
from bot.app import App
from bot.config import Settings, load_settings
from storage.database import transaction
from storage.tables import (
    Answer,
    Customer,
    DeliveryFailure,
    InboxUpdate,
    OutboxMessage,
    ReviewAlert,
    ReviewEvent,
    ReviewItem,
)
from tests.fakes.serving import running
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlackAPI, form, sign

FAST = RetryPolicy(attempts=4, backoff=0.02, max_backoff=0.1, max_retry_after=2.0)
ALERTS = "C0ALERTS1"
AGENT = "U0AGENT01"  # a support user
STRANGER = "U0OTHER01"  # a workspace member who is not


def ann_profile(user: str) -> dict[str, Any]:
    """The users.info profile of a test customer called Ann Lee (English, US)."""
    return {
        "id": user,
        "real_name": "Ann Lee",
        "locale": "en-US",
        "profile": {"first_name": "Ann", "last_name": "Lee"},
    }


def slack_settings(fake: FakeSlackAPI, tmp_path: Path, **extra: str) -> Settings:
    """Defaults plus a Slack app in HTTP mode pointed at the fake, alerts on (SQLite)."""
    environ = {
        "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
        "CXBOT_SLACK__BOT_TOKEN": fake.token,
        "CXBOT_SLACK__SIGNING_SECRET": SIGNING_SECRET,
        "CXBOT_SLACK__MODE": "http",
        "CXBOT_SLACK__BASE_URL": fake.base_url,
        "CXBOT_SLACK__ALERT_CHANNEL": ALERTS,
        "CXBOT_SLACK__SUPPORT_USERS": AGENT,
        "CXBOT_SLACK__ALERT_POLL_SECONDS": "0.05",
        "CXBOT_SERVER__PORT": "0",
        "CXBOT_SENTIMENT__ENABLED": "false",
        **{f"CXBOT_{k.upper()}": v for k, v in extra.items()},
    }
    return load_settings(None, environ=environ)


@dataclass
class Served:
    """`cxbot serve` running with Slack in HTTP mode, and a client to post as Slack does."""

    app: App
    url: str
    http: httpx.AsyncClient

    async def post(
        self,
        body: bytes,
        *,
        content_type: str,
        headers: dict[str, str] | None = None,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        settle: bool = True,
    ) -> httpx.Response:
        """POST to /slack/events, signed with `secret` at `timestamp` (now by default).

        With `settle`, returns once what the request recorded was processed and delivered.
        """
        all_headers = {
            "Content-Type": content_type,
            **sign(body, secret=secret, timestamp=timestamp),
            **(headers or {}),
        }
        response = await self.http.post(
            f"{self.url}/slack/events", content=body, headers=all_headers
        )
        if settle:
            await settled(self.app)
        return response

    async def event(self, body: dict[str, Any], **kw: Any) -> httpx.Response:
        """An Events API request."""
        return await self.post(json.dumps(body).encode(), content_type="application/json", **kw)

    async def interact(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        """An interactivity request (block_actions, view_submission)."""
        return await self.post(
            form(payload), content_type="application/x-www-form-urlencoded", **kw
        )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Served]:
    """`serve` on 127.0.0.1 port 0 until the block ends."""
    async with running(settings) as (app, url), httpx.AsyncClient(timeout=10) as http:
        yield Served(app=app, url=url, http=http)


def inbox_rows(app: App) -> list[InboxUpdate]:
    """Every recorded update, oldest first."""
    with transaction(app.db) as s:
        return list(s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))))


def outbox_rows(app: App) -> list[OutboxMessage]:
    """Every outbox row, oldest first."""
    with transaction(app.db) as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def quiet(app: App) -> bool:
    """True when every recorded update is processed and nothing due waits in the outbox.

    A row waiting for a retry later (a rate limit) does not count as due.
    """
    if any(r.processed_at is None for r in inbox_rows(app)):
        return False
    rows = outbox_rows(app)
    now = datetime.now(UTC)  # after reading: rows written meanwhile are due, not "later"
    return not any(
        r.sent_at is None and r.failed_at is None and _aware(r.not_before) <= now for r in rows
    )


async def settled(app: App, *, timeout: float = 10.0) -> None:
    """Wait until the inbox and the outbox have done what is due (see `quiet`)."""
    await wait_until(lambda: quiet(app), timeout=timeout, what="the inbox and outbox to settle")


def answers(app: App, user: str) -> list[tuple[str, int | None, str | None]]:
    """(question, value_int, value_text) of the customer's stored answers, oldest first."""
    with transaction(app.db) as s:
        cust = s.exec(select(Customer).where(Customer.external_id == user)).one()
        stmt = select(Answer).where(Answer.customer_id == cust.id).order_by(col(Answer.id))
        return [(a.question_id, a.value_int, a.value_text) for a in s.exec(stmt)]


def review_items(app: App) -> list[ReviewItem]:
    """Every review item, oldest first."""
    with transaction(app.db) as s:
        return list(s.exec(select(ReviewItem).order_by(col(ReviewItem.id))))


def review_events(app: App) -> list[tuple[str, str, str | None]]:
    """(action, actor, note) of every review event, oldest first."""
    with transaction(app.db) as s:
        rows = s.exec(select(ReviewEvent).order_by(col(ReviewEvent.id)))
        return [(e.action, e.actor, e.note) for e in rows]


def delivery_failures(app: App) -> list[tuple[str, str, str]]:
    """(purpose, target, error) of every stored delivery failure."""
    with transaction(app.db) as s:
        rows = s.exec(select(DeliveryFailure).order_by(col(DeliveryFailure.id)))
        return [(f.purpose, f.target, f.error) for f in rows]


def alerts_settled(app: App) -> bool:
    """True when every alert is posted and released by the poster that posted it.

    The fake records a post before the poster stores its ts; a support action taken in between
    finds the alert claimed and leaves the update to the poster's next pass. Tests that press
    alert buttons wait for this first, so the action's own update is the one they see.
    """
    with transaction(app.db) as s:
        rows = list(s.exec(select(ReviewAlert)))
    return rows != [] and all(a.message_ts and a.claimed_at is None for a in rows)


def buttons(message: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """(label, value) rows of a message's actions blocks."""
    return [
        [(e["text"]["text"], e.get("value", "")) for e in block["elements"]]
        for block in message.get("blocks", [])
        if block["type"] == "actions"
    ]


async def wait_until(check: Any, *, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `check()` until it is true (background work such as the alert poster)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
