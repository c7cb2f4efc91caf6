"""The invitation sections of `cxbot report`: NPS / CES / CSAT by touchpoint, and the funnel
invited → delivered → started → completed with the withheld counts by rule.

Definitions (the README's "Reports" says the same for users):

- invited — invitation rows (every source: the API, `cxbot invite`, `cxbot invite --csv`);
- scheduled — waiting for their send time; withheld — a rule said no, counted by reason;
- sent — the survey was opened and its first messages queued;
- delivered — sent, and the messages reached the customer: not given up by the delivery worker
  and not still waiting in the outbox (`storage.invitation_reports`);
- started — at least one answer (a skip counts, a late comment does not);
- completed — the survey's last question was answered (conversation state `completed`).

Each step counts invitations and includes the next one. Surveys a customer started without an
invitation (a /start, a deep link, `cxbot chat`) are outside the funnel and the touchpoint
breakdown; they are in the overall scores.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.metrics import Summary, summarize
from storage.database import Session
from storage.invitation_reports import (
    FunnelRow,
    TouchpointScore,
    funnel_counts,
    touchpoint_score_answers,
)
from storage.reports import ScoreRow
from storage.tables import InvitationStatus

# The group of invitations that name no touchpoint (`cxbot invite` without `--touchpoint`);
# touchpoint names cannot contain parentheses, so it never clashes with one.
NO_TOUCHPOINT = "(none)"
NAME_WIDTH = 30  # "touchpoint: onboarding_failed"


@dataclass(slots=True)
class Funnel:
    """One group's funnel: counts of invitations at each step, withheld ones by reason."""

    invited: int = 0
    scheduled: int = 0
    withheld: int = 0
    withheld_by_reason: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    delivered: int = 0
    started: int = 0
    completed: int = 0

    def add(self, row: FunnelRow) -> None:
        """Count one row of `storage.invitation_reports.funnel_counts`."""
        self.invited += row.invited
        if row.status == InvitationStatus.SCHEDULED:
            self.scheduled += row.invited
        elif row.status == InvitationStatus.WITHHELD:
            self.withheld += row.invited
            self.withheld_by_reason[row.reason or "unknown"] += row.invited
        else:
            self.sent += row.invited
        self.delivered += row.delivered
        self.started += row.started
        self.completed += row.completed

    @property
    def response_rate(self) -> float | None:
        """Completed surveys as a % of delivered ones (None: nothing delivered)."""
        return round(100 * self.completed / self.delivered, 1) if self.delivered else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "invited": self.invited,
            "scheduled": self.scheduled,
            "withheld": self.withheld,
            "withheld_by_reason": dict(sorted(self.withheld_by_reason.items())),
            "sent": self.sent,
            "delivered": self.delivered,
            "started": self.started,
            "completed": self.completed,
            "response_rate": self.response_rate,
        }


@dataclass(frozen=True, slots=True)
class FunnelReport:
    """The funnel overall and per flow, channel and touchpoint."""

    overall: Funnel
    by_flow: dict[str, Funnel]
    by_channel: dict[str, Funnel]
    by_touchpoint: dict[str, Funnel]

    def to_dict(self) -> dict[str, Any]:
        """The `funnel` object of `cxbot report --json`: overall keys at the top level."""
        return {
            **self.overall.to_dict(),
            "by_flow": {k: v.to_dict() for k, v in self.by_flow.items()},
            "by_channel": {k: v.to_dict() for k, v in self.by_channel.items()},
            "by_touchpoint": {k: v.to_dict() for k, v in self.by_touchpoint.items()},
        }


def _touchpoint(name: str | None) -> str:
    return name if name is not None else NO_TOUCHPOINT


def build_funnel(rows: Iterable[FunnelRow]) -> FunnelReport:
    """Add the counted rows up, overall and per group."""
    overall = Funnel()
    groups: dict[str, dict[str, Funnel]] = {
        "flow": defaultdict(Funnel),
        "channel": defaultdict(Funnel),
        "touchpoint": defaultdict(Funnel),
    }
    for row in rows:
        overall.add(row)
        groups["flow"][row.flow_id].add(row)
        groups["channel"][row.channel].add(row)
        groups["touchpoint"][_touchpoint(row.touchpoint)].add(row)
    return FunnelReport(
        overall=overall,
        by_flow=dict(sorted(groups["flow"].items())),
        by_channel=dict(sorted(groups["channel"].items())),
        by_touchpoint=dict(sorted(groups["touchpoint"].items())),
    )


def by_touchpoint(scores: Iterable[TouchpointScore]) -> dict[str, Summary]:
    """NPS, CES and CSAT per touchpoint of the invitation that opened each survey."""
    groups: dict[str, list[ScoreRow]] = defaultdict(list)
    for item in scores:
        groups[_touchpoint(item.touchpoint)].append(item.score)
    return {name: summarize(rows) for name, rows in sorted(groups.items())}


@dataclass(frozen=True, slots=True)
class InvitationSections:
    """What `cxbot report` adds about invitations."""

    touchpoints: dict[str, Summary]
    funnel: FunnelReport

    def to_dict(self) -> dict[str, Any]:
        """The `touchpoints` and `funnel` keys of `cxbot report --json`."""
        return {
            "touchpoints": {k: v.to_dict() for k, v in self.touchpoints.items()},
            "funnel": self.funnel.to_dict(),
        }


def invitation_sections(
    session: Session, *, flow_id: str | None = None, channel: str | None = None
) -> InvitationSections:
    """Read and add up the invitation sections (optionally for one flow or channel)."""
    return InvitationSections(
        touchpoints=by_touchpoint(
            touchpoint_score_answers(session, flow_id=flow_id, channel=channel)
        ),
        funnel=build_funnel(funnel_counts(session, flow_id=flow_id, channel=channel)),
    )


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def format_sections(sections: InvitationSections) -> str:
    """Plain-text tables for people, printed after the scores (empty when nothing was invited)."""
    lines: list[str] = []
    if sections.touchpoints:
        lines.append(
            f"{'by touchpoint':<24} {'NPS':>7} {'n':>5}  {'CES':>5} {'n':>5}  {'CSAT%':>6} {'n':>5}"
        )
        for name, s in sections.touchpoints.items():
            lines.append(
                f"{name[:24]:<24} {_fmt(s.nps.score, '+.1f'):>7} {s.nps.n:>5}  "
                f"{_fmt(s.ces.mean, '.2f'):>5} {s.ces.n:>5}  "
                f"{_fmt(s.csat.score, '.1f'):>6} {s.csat.n:>5}"
            )
    funnel = sections.funnel
    if funnel.overall.invited:
        if lines:
            lines.append("")
        lines += _funnel_table(funnel)
        lines.append(
            "\ndelivered: reached the customer; started: at least one answer; response = "
            "completed / delivered. Surveys started without an invitation are not in the funnel."
        )
        withheld = funnel.overall.withheld_by_reason
        if withheld:
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(withheld.items()))
            lines.append(f"Withheld by rule: {reasons}.")
    return "\n".join(lines)


def _funnel_table(funnel: FunnelReport) -> list[str]:
    columns: list[tuple[str, Callable[[Funnel], str]]] = [
        ("invited", lambda f: str(f.invited)),
        ("withheld", lambda f: str(f.withheld)),
        ("sched.", lambda f: str(f.scheduled)),
        ("sent", lambda f: str(f.sent)),
        ("deliv.", lambda f: str(f.delivered)),
        ("started", lambda f: str(f.started)),
        ("done", lambda f: str(f.completed)),
        ("resp.%", lambda f: _fmt(f.response_rate, ".1f")),
    ]
    lines = [f"{'funnel':<{NAME_WIDTH}}" + "".join(f" {title:>8}" for title, _ in columns)]

    def row(name: str, f: Funnel) -> str:
        return f"{name[:NAME_WIDTH]:<{NAME_WIDTH}}" + "".join(
            f" {cell(f):>8}" for _, cell in columns
        )

    lines.append(row("all invitations", funnel.overall))
    for title, groups in (
        ("flow", funnel.by_flow),
        ("channel", funnel.by_channel),
        ("touchpoint", funnel.by_touchpoint),
    ):
        for name, group in groups.items():
            lines.append(row(f"{title}: {name}", group))
    return lines
