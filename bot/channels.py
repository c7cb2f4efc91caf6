"""Wiring of the chat channels from settings: SDK clients built here, adapters given them.

Adapters never read settings; this module turns `[telegram]` into a python-telegram-bot `Bot`
pointed at `base_url` and `[slack]` into a Bolt `AsyncApp` whose `AsyncWebClient` uses
`base_url`, and hands them to `adapters.telegram` / `adapters.slack` together with the inbox's
recorder (updates in) — senders (messages out) are handed to the delivery worker.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from telegram import Bot

from adapters.retrying import RetryPolicy
from adapters.telegram import TelegramChannel, TelegramSender
from adapters.telegram_http import AiohttpRequest
from bot.app import App
from bot.config import Settings
from bot.errors import ConfigError
from bot.messages import RecordUpdates

if TYPE_CHECKING:  # Slack's SDK is imported when Slack is configured, not before
    from slack_bolt.async_app import AsyncApp

    from adapters.slack import SlackChannel, SlackSender

# Connections to the Bot API for sends (getUpdates has its own). Few: the delivery worker has
# one message in flight, and a large httpx pool costs CPU in its bookkeeping.
TELEGRAM_POOL = 8
# Each delivery is tried briefly in line; longer waits are the outbox's (bot.delivery).
OUTBOX_TELEGRAM_POLICY = RetryPolicy(attempts=2, backoff=0.5, max_retry_after=5.0)


def telegram_token(settings: Settings) -> str | None:
    """The bot token, or None when the Telegram channel is off."""
    token = settings.telegram.token
    return token.get_secret_value() if token is not None else None


def build_telegram_bot(settings: Settings) -> Bot:
    """A python-telegram-bot `Bot` for the configured token and `base_url` (not initialised)."""
    token = telegram_token(settings)
    if token is None:
        raise ConfigError(
            "Telegram is not configured: set [telegram] token (or CXBOT_TELEGRAM__TOKEN) to the "
            "token @BotFather gave you"
        )
    # Opt in to python-telegram-bot's coming behaviour (time periods as timedelta, which
    # adapters.telegram_delivery reads) instead of a deprecation warning on every rate limit.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    return Bot(
        token,
        base_url=settings.telegram.base_url,
        request=AiohttpRequest(connection_pool_size=TELEGRAM_POOL),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
    )


def build_telegram_channel(
    app: App, record: RecordUpdates, *, bot: Bot | None = None
) -> TelegramChannel:
    """The Telegram channel recording into `record` (bot built from settings if None)."""
    return TelegramChannel(bot or build_telegram_bot(app.settings), record)


def build_telegram_sender(bot: Bot) -> TelegramSender:
    """The delivery worker's sender for Telegram."""
    return TelegramSender(bot, policy=OUTBOX_TELEGRAM_POLICY)


# -- Slack ----------------------------------------------------------------------------------------


def slack_token(settings: Settings) -> str | None:
    """The Slack bot token, or None when the Slack channel is off."""
    token = settings.slack.bot_token
    return token.get_secret_value() if token is not None else None


def build_slack_app(settings: Settings) -> AsyncApp:
    """A Bolt AsyncApp for the configured Slack app, its Web API client at `base_url`.

    Requests are handled before they are acknowledged (`process_before_response`); in HTTP
    mode Bolt verifies each request's signature and rejects timestamps older than five minutes.
    """
    token = slack_token(settings)
    if token is None:
        raise ConfigError(
            "Slack is not configured: set [slack] bot_token (or CXBOT_SLACK__BOT_TOKEN) to the "
            "app's Bot User OAuth Token (xoxb-…)"
        )
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    cfg = settings.slack
    http = cfg.mode == "http"
    secret = cfg.signing_secret.get_secret_value() if cfg.signing_secret is not None else ""
    client = AsyncWebClient(token=token, base_url=cfg.base_url)
    return AsyncApp(
        client=client,
        signing_secret=secret,
        # Socket Mode requests come over an authenticated websocket; there is nothing to sign.
        request_verification_enabled=http,
        process_before_response=True,
        logger=logging.getLogger("cxbot.slack_bolt"),
    )


def build_slack_channel(
    app: App,
    record: RecordUpdates,
    *,
    slack_app: AsyncApp | None = None,
    policy: RetryPolicy | None = None,
) -> SlackChannel:
    """The Slack channel recording into `record` (Bolt app built from settings if None)."""
    from adapters.slack import SlackChannel

    return SlackChannel(slack_app or build_slack_app(app.settings), record, policy=policy)


def build_slack_sender(slack_app: AsyncApp) -> SlackSender:
    """The delivery worker's sender for Slack (DMs through the app's Web API client)."""
    from adapters.slack import SlackSender

    policy = RetryPolicy(attempts=2, backoff=0.5, max_retry_after=5.0)
    return SlackSender(slack_app.client, policy=policy)
