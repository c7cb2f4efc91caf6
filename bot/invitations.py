"""Invitations: the bot opens a survey with a customer now (`cxbot invite`).

Rules, in order: an opted-out customer is never invited; a customer marked unreachable (blocked
the bot, or Telegram refused an earlier delivery) is not tried again until they write to the bot;
a customer surveyed within `[invitations] quiet_days` is left in peace. Otherwise the engine opens
the survey, writing its first messages to the outbox, and they are delivered at once. If the
channel refuses (on Telegram a customer must have started the bot first), the customer is marked
unreachable and the survey that never arrived is abandoned, so that it does not count as one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.app import App
from bot.delivery import DeliveryWorker
from bot.errors import CxbotError, DeliveryError
from bot.messages import ChannelSender
from storage.database import transaction
from storage.invitations import InvitationFacts, abandon_active_survey, invitation_facts
from storage.outbox import lane_of

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


class Outcome(StrEnum):
    """What became of an invitation."""

    SENT = "sent"
    OPTED_OUT = "opted_out"
    QUIET_PERIOD = "quiet_period"
    UNREACHABLE = "unreachable"


# `cxbot invite` exit statuses: 0 sent, 3 withheld by a rule, 4 the customer cannot be reached
# (1 stays "error": configuration, or the platform failing after retries; trying again may help).
EXIT_STATUS = {
    Outcome.SENT: 0,
    Outcome.OPTED_OUT: 3,
    Outcome.QUIET_PERIOD: 3,
    Outcome.UNREACHABLE: 4,
}


@dataclass(frozen=True, slots=True)
class InvitationResult:
    """The outcome and one line saying what happened."""

    outcome: Outcome
    message: str

    @property
    def exit_status(self) -> int:
        """The exit status `cxbot invite` ends with."""
        return EXIT_STATUS[self.outcome]


def _day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


async def invite(
    app: App,
    *,
    channel: str,
    user_id: str,
    sender: ChannelSender,
    flow_id: str | None = None,
    context: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> InvitationResult:
    """Invite one customer to a survey, applying the rules above; `sender` delivers it.

    The survey's first messages are written to the outbox in the survey's own transaction and
    delivered at once through `sender` (the same delivery worker `cxbot serve` runs). Raises
    UnknownFlowError before anything is stored; DeliveryError when the channel fails for another
    reason than the customer — the survey is then abandoned so that trying again later is not
    blocked by the quiet period — or asks to wait (the messages stay queued for `cxbot serve`).
    """
    flow = app.catalog.get(flow_id or app.settings.flows.default)
    who = f"{channel} user {user_id}"
    facts = await asyncio.to_thread(_facts, app, channel, user_id)
    withheld = _withheld(app, facts, who, now or datetime.now(UTC))
    if withheld is not None:
        return withheld
    messages = await app.engine.begin(
        channel=channel, user_id=user_id, flow_id=flow.id, context=dict(context or {})
    )
    worker = DeliveryWorker(db=app.db, senders={channel: sender})
    outcomes = await worker.drain([lane_of(channel, user_id)])
    unreachable = next((o for o in outcomes if o.unreachable), None)
    if unreachable is not None:
        await asyncio.to_thread(_abandon, app, channel, user_id)
        hint = (
            "; this customer has never written to the bot, and a bot may only message people "
            "who started it first (a /start or a deep link)"
            if not facts.known and channel == "telegram"
            else ""
        )
        return InvitationResult(
            Outcome.UNREACHABLE, f"not sent: {who} is unreachable: {unreachable.error}{hint}"
        )
    failed = next((o for o in outcomes if o.status == "failed"), None)
    if failed is not None:
        await asyncio.to_thread(_abandon, app, channel, user_id)
        raise DeliveryError(f"not sent: {failed.error}")
    waiting = next((o for o in outcomes if o.status == "retry"), None)
    if waiting is not None:
        raise DeliveryError(
            f"not sent yet: {waiting.error}; the survey stays queued and `cxbot serve` sends it "
            "when the platform allows"
        )
    return InvitationResult(
        Outcome.SENT,
        f"sent: survey '{flow.id}' to {who} ({len(messages)} message(s))",
    )


def _withheld(app: App, facts: InvitationFacts, who: str, now: datetime) -> InvitationResult | None:
    if facts.opted_out_at is not None:
        return InvitationResult(
            Outcome.OPTED_OUT,
            f"not sent: {who} opted out of surveys on {_day(facts.opted_out_at)}",
        )
    if facts.unreachable_at is not None:
        return InvitationResult(
            Outcome.UNREACHABLE,
            f"not sent: {who} is unreachable since {_day(facts.unreachable_at)} "
            f"({facts.unreachable_reason or 'no reason recorded'}); they become reachable again "
            "when they write to the bot",
        )
    quiet = app.settings.invitations.quiet_days
    last = facts.last_surveyed_at
    if quiet and last is not None and now - last < timedelta(days=quiet):
        return InvitationResult(
            Outcome.QUIET_PERIOD,
            f"not sent: {who} was surveyed on {_day(last)}, within the quiet period "
            f"([invitations] quiet_days = {quiet})",
        )
    return None


def _facts(app: App, channel: str, user_id: str) -> InvitationFacts:
    with transaction(app.db) as session:
        return invitation_facts(session, channel=channel, external_id=user_id)


def _abandon(app: App, channel: str, user_id: str) -> None:
    with transaction(app.db) as session:
        abandon_active_survey(session, channel=channel, external_id=user_id)


async def invite_on_telegram(
    app: App,
    *,
    user_id: str,
    flow_id: str | None = None,
    context: Mapping[str, str] | None = None,
) -> InvitationResult:
    """`invite` through the configured Telegram bot (`[telegram] token`, `base_url`)."""
    from adapters.telegram import CHANNEL
    from adapters.telegram_delivery import call_api
    from bot.channels import build_telegram_bot, build_telegram_sender

    if not user_id.lstrip("-").isdigit():
        raise CxbotError(
            f"a Telegram user id is the customer's numeric chat id, not {user_id!r} "
            "(it is the user_id cxbot stored when they wrote to the bot)"
        )
    app.catalog.get(flow_id or app.settings.flows.default)  # an unknown flow: say so first
    bot = build_telegram_bot(app.settings)
    sender = build_telegram_sender(bot)
    await call_api(bot.initialize, what="getMe", policy=sender.policy)
    try:
        return await invite(
            app, channel=CHANNEL, user_id=user_id, sender=sender, flow_id=flow_id, context=context
        )
    finally:
        await bot.shutdown()


async def invite_on_slack(
    app: App,
    *,
    user_id: str,
    flow_id: str | None = None,
    context: Mapping[str, str] | None = None,
) -> InvitationResult:
    """`invite` through the configured Slack app: conversations.open, then the first question."""
    from adapters.slack import CHANNEL
    from bot.channels import build_slack_app, build_slack_sender

    if not _SLACK_USER.fullmatch(user_id):
        raise CxbotError(
            f"a Slack user id looks like U012ABCDEF (profile → ⋮ → Copy member ID), not {user_id!r}"
        )
    app.catalog.get(flow_id or app.settings.flows.default)  # an unknown flow: say so first
    sender = build_slack_sender(build_slack_app(app.settings))
    return await invite(
        app, channel=CHANNEL, user_id=user_id, sender=sender, flow_id=flow_id, context=context
    )
