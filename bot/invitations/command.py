"""`cxbot invite`: invite one customer now, through the same rules as the API, and say what
happened.

The invitation is created with source "cli" (`bot.invitations.service`): the fatigue rules
decide, and a survey due now is opened with its first messages in the outbox, which are then
delivered at once through the channel (the same delivery worker `cxbot serve` runs). If the
channel refuses (on Telegram a customer must have started the bot first), the customer is marked
unreachable and the survey that never arrived is abandoned, so that it does not count as one.
Inside the quiet hours the invitation is scheduled for their end, and `cxbot serve` sends it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bot.app import App
from bot.delivery import DeliveryWorker
from bot.errors import CxbotError, DeliveryError
from bot.invitations.rules import Reason
from bot.invitations.service import Created, InvalidInvitation, InvitationRequest, Invitations
from bot.messages import ChannelSender
from bot.quiet_hours import zone_named
from storage.database import transaction
from storage.invitations import abandon_active_survey
from storage.outbox import lane_of
from storage.tables import InvitationStatus

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
CLI_SOURCE = "cli"


class Outcome(StrEnum):
    """What became of an invitation."""

    SENT = "sent"
    SCHEDULED = "scheduled"  # inside the quiet hours: `cxbot serve` sends it at their end
    OPTED_OUT = "opted_out"
    WITHHELD = "withheld"  # another rule (cooldown, recontact, sampling, suppression list)
    UNREACHABLE = "unreachable"


# `cxbot invite` exit statuses: 0 sent (or scheduled), 3 withheld by a rule, 4 the customer cannot
# be reached (1 stays "error": configuration, or the platform failing after retries; trying again
# may help).
EXIT_STATUS = {
    Outcome.SENT: 0,
    Outcome.SCHEDULED: 0,
    Outcome.OPTED_OUT: 3,
    Outcome.WITHHELD: 3,
    Outcome.UNREACHABLE: 4,
}


@dataclass(frozen=True, slots=True)
class InvitationResult:
    """The outcome and one line saying what happened."""

    outcome: Outcome
    message: str
    invitation_id: int | None = None
    reason: str | None = None

    @property
    def exit_status(self) -> int:
        """The exit status `cxbot invite` ends with."""
        return EXIT_STATUS[self.outcome]


def service_for(app: App, channel: str, now: datetime | None = None) -> Invitations:
    """The invitation service of a one-off command delivering on `channel`."""
    return Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=[channel],
        clock=(lambda: now) if now is not None else (lambda: datetime.now(UTC)),
    )


async def invite(
    app: App,
    *,
    channel: str,
    user_id: str,
    sender: ChannelSender,
    flow_id: str | None = None,
    context: Mapping[str, str] | None = None,
    touchpoint: str | None = None,
    interaction_id: str | None = None,
    now: datetime | None = None,
) -> InvitationResult:
    """Invite one customer to a survey, applying the rules; `sender` delivers it.

    Raises UnknownFlowError before anything is stored, CxbotError for another bad argument;
    DeliveryError when the channel fails for another reason than the customer — the survey is
    then abandoned so that trying again later is not blocked by the cooldown — or asks to wait
    (the messages stay queued for `cxbot serve`).
    """
    service = service_for(app, channel, now)
    request = InvitationRequest(
        channel=channel,
        user_id=user_id,
        touchpoint=touchpoint,
        # Without an id of the caller's, every run is an interaction of its own.
        interaction_id=interaction_id or f"cli-{uuid.uuid4().hex}",
        flow_id=flow_id,
        context=dict(context or {}),
    )
    app.catalog.get(service.flow_for(request))  # an unknown flow: UnknownFlowError first
    try:
        created = await service.create(request, source=CLI_SOURCE)
    except InvalidInvitation as exc:
        raise CxbotError(str(exc)) from None
    who = f"{channel} user {user_id}"
    if created.status == InvitationStatus.WITHHELD:
        outcome = {
            Reason.OPTED_OUT: Outcome.OPTED_OUT,
            Reason.UNREACHABLE: Outcome.UNREACHABLE,
        }.get(Reason(created.reason or Reason.ERROR), Outcome.WITHHELD)
        return InvitationResult(
            outcome, f"not sent: {who} {created.detail}", created.id, created.reason
        )
    if created.status == InvitationStatus.SCHEDULED:
        zone = app.settings.invitations.default_time_zone
        return InvitationResult(
            Outcome.SCHEDULED,
            f"scheduled: survey '{created.flow_id}' to {who} at "
            f"{created.send_at.astimezone(zone_named(zone)):%Y-%m-%d %H:%M} {zone} "
            f"({created.detail or 'its send time'}); `cxbot serve` sends it then",
            created.id,
            created.reason,
        )
    if not created.created:
        return InvitationResult(
            Outcome.SENT, f"already sent: invitation {created.id} to {who}", created.id
        )
    return await _deliver(app, channel, user_id, sender, created)


async def _deliver(
    app: App, channel: str, user_id: str, sender: ChannelSender, created: Created
) -> InvitationResult:
    """Deliver the survey's queued messages now and say how it went."""
    who = f"{channel} user {user_id}"
    worker = DeliveryWorker(db=app.db, senders={channel: sender})
    outcomes = await worker.drain([lane_of(channel, user_id)])
    unreachable = next((o for o in outcomes if o.unreachable), None)
    if unreachable is not None:
        await asyncio.to_thread(_abandon, app, channel, user_id)
        hint = (
            "; this customer has never written to the bot, and a bot may only message people "
            "who started it first (a /start or a deep link)"
            if not created.known and channel == "telegram"
            else ""
        )
        return InvitationResult(
            Outcome.UNREACHABLE,
            f"not sent: {who} is unreachable: {unreachable.error}{hint}",
            created.id,
            Reason.UNREACHABLE,
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
        f"sent: survey '{created.flow_id}' to {who} ({created.messages} message(s))",
        created.id,
    )


def _abandon(app: App, channel: str, user_id: str) -> None:
    with transaction(app.db) as session:
        abandon_active_survey(session, channel=channel, external_id=user_id)


async def invite_on_telegram(
    app: App,
    *,
    user_id: str,
    flow_id: str | None = None,
    context: Mapping[str, str] | None = None,
    touchpoint: str | None = None,
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
    _check_flow(app, flow_id, touchpoint)
    bot = build_telegram_bot(app.settings)
    sender = build_telegram_sender(bot)
    await call_api(bot.initialize, what="getMe", policy=sender.policy)
    try:
        return await invite(
            app,
            channel=CHANNEL,
            user_id=user_id,
            sender=sender,
            flow_id=flow_id,
            context=context,
            touchpoint=touchpoint,
        )
    finally:
        await bot.shutdown()


async def invite_on_slack(
    app: App,
    *,
    user_id: str,
    flow_id: str | None = None,
    context: Mapping[str, str] | None = None,
    touchpoint: str | None = None,
) -> InvitationResult:
    """`invite` through the configured Slack app: conversations.open, then the first question."""
    from adapters.slack import CHANNEL
    from bot.channels import build_slack_app, build_slack_sender

    if not _SLACK_USER.fullmatch(user_id):
        raise CxbotError(
            f"a Slack user id looks like U012ABCDEF (profile → ⋮ → Copy member ID), not {user_id!r}"
        )
    _check_flow(app, flow_id, touchpoint)
    sender = build_slack_sender(build_slack_app(app.settings))
    return await invite(
        app,
        channel=CHANNEL,
        user_id=user_id,
        sender=sender,
        flow_id=flow_id,
        context=context,
        touchpoint=touchpoint,
    )


def _check_flow(app: App, flow_id: str | None, touchpoint: str | None) -> None:
    """An unknown flow or touchpoint: say so before any platform is called."""
    service = service_for(app, "telegram")
    request = InvitationRequest(
        channel="telegram", user_id="0", touchpoint=touchpoint, interaction_id="-", flow_id=flow_id
    )
    app.catalog.get(service.flow_for(request))  # raises UnknownFlowError
    problems = [p for p in service.problems(request) if p.field == "touchpoint"]
    if problems:
        raise CxbotError(str(problems[0]))
