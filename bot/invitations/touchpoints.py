"""Touchpoints: the moments after which a customer is invited, each with its flow and rules.

The classic ones are built in; `[touchpoints.NAME]` declares more, and sets a touchpoint's flow
and its own fatigue rules (see `bot.invitations.rules.rules_for`).
"""

from __future__ import annotations

from bot.config import Settings
from bot.errors import ConfigError
from bot.flow_catalog import FlowCatalog

BUILTIN_TOUCHPOINTS = (
    "first_visit",
    "purchase",
    "onboarding_failed",
    "refund",
    "support_contact",
    "referral",
)


def touchpoint_names(settings: Settings) -> list[str]:
    """Every touchpoint an invitation may name: the built-ins, then those of the config."""
    declared = [name for name in settings.touchpoints if name not in BUILTIN_TOUCHPOINTS]
    return [*BUILTIN_TOUCHPOINTS, *declared]


def touchpoint_flow(settings: Settings, touchpoint: str | None) -> str | None:
    """The flow configured for `touchpoint` (`[touchpoints.NAME] flow`), if any."""
    if touchpoint is None:
        return None
    own = settings.touchpoints.get(touchpoint)
    return own.flow if own is not None else None


def check_touchpoint_flows(settings: Settings, catalog: FlowCatalog) -> None:
    """Every `[touchpoints.NAME] flow` must name a loaded flow; ConfigError listing those that
    do not (checked at start, not at the first invitation)."""
    known = set(catalog.ids())
    bad = [
        f"[touchpoints.{name}] flow: unknown flow {tp.flow!r}"
        for name, tp in settings.touchpoints.items()
        if tp.flow is not None and tp.flow not in known
    ]
    if bad:
        raise ConfigError(
            "invalid configuration:\n  "
            + "\n  ".join(bad)
            + f"\n  known flows: {', '.join(sorted(known))}"
        )
