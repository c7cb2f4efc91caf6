"""Slack's share of `cxbot serve`: the channel, its route or socket, the desk and the alerts.

Kept apart from bot/serve.py so that serve stays a list of parts: this module builds the Slack
channel from `[slack]` (recording events into the inbox), its sender for the delivery worker,
a `ReviewDesk` (alert buttons) and, with `alert_channel` set, an `AlertPoster` background task
that posts flagged replies there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp

from adapters.retrying import RetryPolicy
from adapters.slack import SlackChannel, SlackSender
from bot.app import App
from bot.channels import build_slack_app, build_slack_channel, build_slack_sender
from bot.messages import RecordUpdates
from bot.reviews import AlertPoster, ReviewDesk

SLACK_EVENTS_PATH = "/slack/events"  # Bolt's default path; the manifest's request URLs use it


@dataclass
class SlackPlan:
    """The running Slack channel, its sender, how it starts, and the alert poster if on."""

    channel: SlackChannel
    sender: SlackSender
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
    record: RecordUpdates,
    *,
    can_reply: Callable[[str], bool],
    slack_app: AsyncApp | None = None,
    policy: RetryPolicy | None = None,
) -> SlackPlan:
    """Build the Slack channel and its sender, and wire the support desk.

    `can_reply(channel)`: whether this process delivers to customers on that channel.
    """
    cfg = app.settings.slack
    bolt = slack_app or build_slack_app(app.settings)
    channel = build_slack_channel(app, record, slack_app=bolt, policy=policy)
    poster = None
    if cfg.alert_channel:
        poster = AlertPoster(
            db=app.db,
            target=cfg.alert_channel,
            show=channel.show_alert,
            can_reply=can_reply,
            poll_seconds=cfg.alert_poll_seconds,
        )
    desk = ReviewDesk(
        db=app.db,
        support_users=cfg.support_users,
        poster=poster,
        can_reply=can_reply,
        names=channel,
    )
    channel.desk = desk
    return SlackPlan(
        channel=channel,
        sender=build_slack_sender(bolt),
        mode=cfg.mode,
        desk=desk,
        poster=poster,
        app_token=cfg.app_token.get_secret_value() if cfg.app_token is not None else None,
    )
