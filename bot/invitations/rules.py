"""Fatigue rules, pure: may this customer be invited for this interaction, and when?

Checked in this order, the first that says no decides (and is recorded as the reason):

1. `opted_out` — the customer said stop; never invited again until they start a survey;
2. `unreachable` — the platform refused (blocked, never started the bot) until they write again;
3. `suppressed` — on the suppression list (`cxbot suppress`, the admin API);
4. `sampled_out` — outside `sample_percent` of interactions, decided by a hash of the
   interaction id, so that a repeat (or the re-check at send time) decides the same way;
5. `cooldown` — surveyed (any flow) within `cooldown_days`;
6. `recontact` — sent this same flow within `recontact_days`.

Quiet hours do not withhold: the send moves to the end of the window in the customer's zone.
Each rule's setting comes from `[touchpoints.NAME]` when set there, else `[invitations]`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar, cast
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.quiet_hours import QuietHours, next_allowed
from storage.invitations import InvitationFacts

T = TypeVar("T")


class Reason(StrEnum):
    """Why an invitation was withheld (or, for QUIET_HOURS, moved): `invitation.reason`."""

    OPTED_OUT = "opted_out"
    UNREACHABLE = "unreachable"
    SUPPRESSED = "suppressed"
    SAMPLED_OUT = "sampled_out"
    COOLDOWN = "cooldown"
    RECONTACT = "recontact"
    UNKNOWN_FLOW = "unknown_flow"  # the flow left the configuration before a scheduled send
    ERROR = "error"  # sending kept failing with an error; given up
    QUIET_HOURS = "quiet_hours"  # still scheduled: moved out of the customer's quiet hours


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules in force for one touchpoint, with the config key each comes from."""

    cooldown_days: int
    recontact_days: int
    sample_percent: float
    quiet_hours: QuietHours | None
    # e.g. {"cooldown_days": "[touchpoints.purchase] cooldown_days"}, for messages.
    keys: dict[str, str]

    def key(self, name: str) -> str:
        """Where the setting `name` in force was configured."""
        return self.keys.get(name, f"[invitations] {name}")


def rules_for(settings: Settings, touchpoint: str | None) -> Rules:
    """The rules of `touchpoint` (None: `cxbot invite` without one): its overrides, else the
    global `[invitations]` settings."""
    base = settings.invitations
    own = settings.touchpoints.get(touchpoint) if touchpoint is not None else None
    keys = {"cooldown_days": f"[invitations] {base.cooldown_key}"}

    def pick(name: str, default: T) -> T:
        value = getattr(own, name, None)
        if value is None:
            return default
        keys[name] = f"[touchpoints.{touchpoint}] {name}"
        return cast(T, value)

    quiet = pick("quiet_hours", base.quiet_hours)
    return Rules(
        cooldown_days=pick("cooldown_days", base.cooldown),
        recontact_days=pick("recontact_days", base.recontact_days),
        sample_percent=pick("sample_percent", base.sample_percent),
        quiet_hours=QuietHours.parse(quiet) if quiet else None,
        keys=keys,
    )


@dataclass(frozen=True, slots=True)
class Withheld:
    """A rule's no: the reason code and one sentence saying why (after the customer's name)."""

    reason: Reason
    detail: str


def _day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


# Sampling resolution: 1/100 of a percent.
_BUCKETS = 10_000


def sample_bucket(interaction_id: str) -> int:
    """The interaction's fixed place in 0…9999 (a hash: spread evenly, the same every time)."""
    digest = hashlib.sha256(interaction_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def sampled_in(interaction_id: str, percent: float) -> bool:
    """Whether the interaction falls inside a `percent` sample of all interactions."""
    return sample_bucket(interaction_id) < round(percent * _BUCKETS / 100)


def withheld(
    facts: InvitationFacts,
    rules: Rules,
    *,
    flow_id: str,
    interaction_id: str,
    now: datetime,
) -> Withheld | None:
    """The first rule that withholds this invitation, or None when it may be sent."""
    if facts.opted_out_at is not None:
        return Withheld(Reason.OPTED_OUT, f"opted out of surveys on {_day(facts.opted_out_at)}")
    if facts.unreachable_at is not None:
        return Withheld(
            Reason.UNREACHABLE,
            f"is unreachable since {_day(facts.unreachable_at)} "
            f"({facts.unreachable_reason or 'no reason recorded'}); they become reachable again "
            "when they write to the bot",
        )
    if facts.suppressed:
        return Withheld(Reason.SUPPRESSED, "is on the suppression list")
    if not sampled_in(interaction_id, rules.sample_percent):
        return Withheld(
            Reason.SAMPLED_OUT,
            f"was not sampled: this interaction is outside the {rules.sample_percent:g}% "
            f"surveyed ({rules.key('sample_percent')} = {rules.sample_percent:g})",
        )
    last = facts.last_surveyed_at
    days = rules.cooldown_days
    if days and last is not None and now - last < timedelta(days=days):
        return Withheld(
            Reason.COOLDOWN,
            f"was surveyed on {_day(last)}, within the quiet period "
            f"({rules.key('cooldown_days')} = {days})",
        )
    last_flow = facts.last_flow_surveyed_at
    days = rules.recontact_days
    if days and last_flow is not None and now - last_flow < timedelta(days=days):
        return Withheld(
            Reason.RECONTACT,
            f"was sent survey '{flow_id}' on {_day(last_flow)}, within the recontact period "
            f"({rules.key('recontact_days')} = {days})",
        )
    return None


@dataclass(frozen=True, slots=True)
class SendTime:
    """When to send: the time asked for, or the end of the quiet hours it fell into."""

    at: datetime
    moved: bool
    detail: str | None = None  # why it moved, for people


def send_time(requested: datetime, *, rules: Rules, zone: ZoneInfo) -> SendTime:
    """`requested` moved out of the quiet hours in the customer's `zone` (DST-correct)."""
    at = next_allowed(requested, zone=zone, quiet=rules.quiet_hours)
    if at <= requested:
        return SendTime(at=requested, moved=False)
    local = at.astimezone(zone)
    return SendTime(
        at=at,
        moved=True,
        detail=(
            f"moved out of the quiet hours {rules.quiet_hours} ({rules.key('quiet_hours')}) "
            f"to {local:%Y-%m-%d %H:%M} {zone.key}"
        ),
    )
