"""Helpers shared by the Telegram tests: settings for the fake API and a running channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from adapters.retrying import RetryPolicy
from adapters.telegram import CHANNEL, TelegramChannel, TelegramSender, translate_json
from bot.app import App
from bot.channels import build_telegram_bot
from bot.config import Settings, load_settings
from bot.delivery import DeliveryWorker, RetrySchedule
from bot.inbox import Inbox, InboxWorker
from storage.database import transaction
from storage.tables import Answer, Conversation, Customer
from tests.fakes.telegram_api import FakeTelegramAPI

# Quick retries, so that failure tests take tenths of a second.
FAST = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2, max_retry_after=2.0)


def telegram_settings(fake: FakeTelegramAPI, tmp_path: Path, **extra: str) -> Settings:
    """Embedded defaults plus a Telegram bot pointed at the fake (SQLite in `tmp_path`)."""
    environ = {
        "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
        "CXBOT_TELEGRAM__TOKEN": fake.token,
        "CXBOT_TELEGRAM__BASE_URL": fake.base_url,
        # The sentiment model is not what these tests are about.
        "CXBOT_SENTIMENT__ENABLED": "false",
        **{f"CXBOT_{k.upper()}": v for k, v in extra.items()},
    }
    return load_settings(None, environ=environ)


# Quick outbox retries too.
FAST_SCHEDULE = RetrySchedule(first=0.05, longest=0.2, attempts=3)


@dataclass
class Pipeline:
    """The Telegram channel with serve's inbox and delivery workers, as a test runs them."""

    channel: TelegramChannel
    inbox: InboxWorker
    delivery: DeliveryWorker


@asynccontextmanager
async def polling(
    app: App, *, policy: RetryPolicy = FAST, schedule: RetrySchedule = FAST_SCHEDULE
) -> AsyncIterator[Pipeline]:
    """The app's Telegram channel long polling the fake, with the inbox and delivery workers
    that `cxbot serve` runs beside it, until the block ends."""
    inbox = Inbox(db=app.db)
    bot = build_telegram_bot(app.settings)
    channel = TelegramChannel(bot, inbox.recorder(CHANNEL), poll_timeout=1)
    delivery = DeliveryWorker(
        db=app.db,
        senders={CHANNEL: TelegramSender(bot, policy=policy)},
        schedule=schedule,
        poll_seconds=0.05,
    )
    worker = InboxWorker(
        db=app.db,
        engine=app.engine,
        translators={CHANNEL: translate_json},
        on_queued=delivery.nudge,
        poll_seconds=0.05,
    )
    inbox.on_recorded(worker.nudge)
    await channel.start_polling()
    tasks = [
        asyncio.create_task(channel.poll()),
        asyncio.create_task(worker.run()),
        asyncio.create_task(delivery.run()),
    ]
    try:
        yield Pipeline(channel=channel, inbox=worker, delivery=delivery)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await channel.stop()


def answers(app: App, user: str = "42") -> list[Answer]:
    """The customer's stored answers, oldest first."""
    with transaction(app.db) as s:
        cust = s.exec(select(Customer).where(Customer.external_id == user)).one()
        stmt = select(Answer).where(Answer.customer_id == cust.id).order_by(col(Answer.id))
        return list(s.exec(stmt))


def conversations(app: App, user: str = "42") -> list[Conversation]:
    """The customer's conversations, oldest first."""
    with transaction(app.db) as s:
        cust = s.exec(select(Customer).where(Customer.external_id == user)).one()
        stmt = select(Conversation).where(Conversation.customer_id == cust.id)
        return list(s.exec(stmt.order_by(col(Conversation.id))))


def customer(app: App, user: str = "42") -> Customer | None:
    """The stored customer, if any."""
    with transaction(app.db) as s:
        return s.exec(select(Customer).where(Customer.external_id == user)).first()


def keyboard(body: dict[str, object]) -> list[list[tuple[str, str]]]:
    """(label, callback data) rows of a sendMessage body's inline keyboard."""
    markup = body.get("reply_markup")
    if not isinstance(markup, dict):
        return []
    return [[(b["text"], b["callback_data"]) for b in row] for row in markup["inline_keyboard"]]
