"""Slack's share of `cxbot serve`: the channel, its route or socket, the desk and the alerts.

Kept apart from bot/serve.py so that serve stays a list of parts: this module builds the Slack
channel from `[slack]`, gives it a `ReviewDesk` (alert buttons) and, with `alert_channel` set,
an `AlertPoster` background task that posts flagged replies there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp

from adapters.slack import CHANNEL, SlackChannel
from adapters.slack_delivery import SlackRetryPolicy
from bot.app import App
from bot.channels import ChannelRegistry, build_slack_channel
from bot.reviews import AlertPoster, ReviewDesk

SLACK_EVENTS_PATH = "/slack/events"  # Bolt's default path; the manifest's request URLs use it


@dataclass
class SlackPlan:
    """The running Slack channel, how it starts, and the alert poster if alerts are on."""

    channel: SlackChannel
    mode: str
    desk: ReviewDesk
    poster: AlertPoster | None = None
    app_token: str | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Connect (auth.test), and in Socket Mode open the websocket."""
        if self.mode == "socket":
            assert self.app_token is not None  # the settings refuse Socket Mode without it
            await self.channel.start_socket_mode(app_token=self.app_token)
        else:
            await self.channel.start_http()


def plan_slack(
    app: App,
    registry: ChannelRegistry,
    *,
    slack_app: AsyncApp | None = None,
    policy: SlackRetryPolicy | None = None,
) -> SlackPlan:
    """Build the Slack channel, register its delivery, and wire the support desk."""
    cfg = app.settings.slack
    channel = build_slack_channel(app, slack_app=slack_app, policy=policy)
    registry.register(CHANNEL, channel.deliver)
    poster = None
    if cfg.alert_channel:
        poster = AlertPoster(
            db=app.db,
            target=cfg.alert_channel,
            show=channel.show_alert,
            can_reply=registry.can_deliver,
            poll_seconds=cfg.alert_poll_seconds,
        )
    desk = ReviewDesk(
        db=app.db,
        support_users=cfg.support_users,
        deliver=registry.deliver,
        poster=poster,
        can_reply=registry.can_deliver,
    )
    channel.desk = desk
    return SlackPlan(
        channel=channel,
        mode=cfg.mode,
        desk=desk,
        poster=poster,
        app_token=cfg.app_token.get_secret_value() if cfg.app_token is not None else None,
    )
