"""Wiring of the chat channels from settings: SDK clients built here, adapters given them.

Adapters never read settings; this module turns `[telegram]` into a python-telegram-bot
`Application` pointed at `base_url` and `[slack]` into a Bolt `AsyncApp` whose `AsyncWebClient`
uses `base_url`, and hands them, with the engine, to `adapters.telegram` / `adapters.slack`.
`ChannelRegistry` delivers to a customer on whichever channel they use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from telegram.ext import ApplicationBuilder

from adapters.slack import SlackChannel
from adapters.slack_delivery import SlackRetryPolicy
from adapters.telegram import TelegramApplication, TelegramChannel
from adapters.telegram_delivery import RetryPolicy
from bot.app import App
from bot.config import Settings
from bot.errors import ConfigError, DeliveryError
from bot.messages import OutgoingMessage

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
        undelivered=app.engine.undelivered,
        flow_ids=app.catalog.ids,
        policy=policy,
    )


# -- the channel registry -------------------------------------------------------------------------

Deliver = Callable[[Sequence[OutgoingMessage]], Awaitable[object]]


class ChannelRegistry:
    """Delivery by channel name, so that bot/ can write to a customer wherever they are.

    `cxbot serve` registers each running channel's delivery (Telegram's sender, Slack's DMs);
    support replies go through `deliver(customer.channel, messages)`.
    """

    def __init__(self) -> None:
        self._channels: dict[str, Deliver] = {}

    def register(self, channel: str, deliver: Deliver) -> None:
        """Make `channel` deliverable through `deliver`."""
        self._channels[channel] = deliver

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels registered, in order."""
        return tuple(self._channels)

    def can_deliver(self, channel: str) -> bool:
        """Whether messages to customers on `channel` can be sent from this process."""
        return channel in self._channels

    async def deliver(self, channel: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send `messages` on `channel`; DeliveryError when that channel is not running here."""
        deliver = self._channels.get(channel)
        if deliver is None:
            raise DeliveryError(f"the {channel} channel is not configured in this cxbot")
        await deliver(messages)


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
    *,
    slack_app: AsyncApp | None = None,
    policy: SlackRetryPolicy | None = None,
) -> SlackChannel:
    """The Slack channel running `app`'s engine (Bolt app built from settings if None)."""
    return SlackChannel(
        slack_app or build_slack_app(app.settings),
        app.engine.handle,
        undelivered=app.engine.undelivered,
        policy=policy,
    )
