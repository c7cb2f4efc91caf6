"""Wiring of the chat channels from settings: SDK clients built here, adapters given them.

Adapters never read settings; this module turns `[telegram]` into a python-telegram-bot
`Application` pointed at `base_url` and hands it, with the engine, to `adapters.telegram`.
"""

from __future__ import annotations

import os

from telegram.ext import ApplicationBuilder

from adapters.telegram import TelegramApplication, TelegramChannel
from adapters.telegram_delivery import RetryPolicy
from bot.app import App
from bot.config import Settings
from bot.errors import ConfigError

# Updates of different chats handled at once; one chat's updates stay in order regardless.
TELEGRAM_CONCURRENCY = 64


def telegram_token(settings: Settings) -> str | None:
    """The bot token, or None when the Telegram channel is off."""
    token = settings.telegram.token
    return token.get_secret_value() if token is not None else None


def build_telegram_application(
    settings: Settings, *, with_updater: bool = True
) -> TelegramApplication:
    """A python-telegram-bot Application for the configured bot (not started).

    `with_updater=False` for webhook mode and one-off sends: nothing then polls Telegram.
    """
    token = telegram_token(settings)
    if token is None:
        raise ConfigError(
            "Telegram is not configured: set [telegram] token (or CXBOT_TELEGRAM__TOKEN) to the "
            "token @BotFather gave you"
        )
    # Opt in to python-telegram-bot's coming behaviour (time periods as timedelta, which
    # adapters.telegram_delivery reads) instead of a deprecation warning on every rate limit.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram.base_url)
        .concurrent_updates(TELEGRAM_CONCURRENCY)
    )
    if not with_updater:
        builder = builder.updater(None)
    return builder.build()


def build_telegram_channel(
    app: App,
    *,
    application: TelegramApplication | None = None,
    policy: RetryPolicy | None = None,
) -> TelegramChannel:
    """The Telegram channel running `app`'s engine (application built from settings if None)."""
    if application is None:
        webhook = app.settings.telegram.mode == "webhook"
        application = build_telegram_application(app.settings, with_updater=not webhook)
    return TelegramChannel(
        application,
        app.engine.handle,
        mark_unreachable=app.engine.mark_unreachable,
        flow_ids=app.catalog.ids,
        policy=policy,
    )
