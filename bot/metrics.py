"""CX metrics from stored score answers: NPS, CES and CSAT, overall and per flow / channel.

- NPS = % promoters (9–10) − % detractors (0–6), from −100 to 100.
- CES = mean effort score, reported on the 1–7 scale (answers on other scales are rescaled).
- CSAT = % of answers that are 4 or 5 on the 1–5 scale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from bot.flags import CES_REFERENCE_SCALE, rescale
from storage.reports import ScoreRow


@dataclass(frozen=True, slots=True)
class NpsSummary:
    """Net Promoter Score and its parts; `score` is None with no answers."""

    score: float | None
    promoters: int
    passives: int
    detractors: int
    n: int


@dataclass(frozen=True, slots=True)
class CesSummary:
    """Customer Effort Score: the mean on a 1–7 scale."""

    mean: float | None
    n: int


@dataclass(frozen=True, slots=True)
class CsatSummary:
    """Customer Satisfaction: % of satisfied (4–5) answers."""

    score: float | None
    satisfied: int
    n: int


@dataclass(frozen=True, slots=True)
class Summary:
    """NPS, CES and CSAT over one set of answers."""

    nps: NpsSummary
    ces: CesSummary
    csat: CsatSummary

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


def nps(values: Iterable[int]) -> NpsSummary:
    """NPS of 0–10 answers."""
    vals = list(values)
    promoters = sum(1 for v in vals if v >= 9)
    detractors = sum(1 for v in vals if v <= 6)
    n = len(vals)
    score = round(100 * (promoters - detractors) / n, 1) if n else None
    return NpsSummary(score, promoters, n - promoters - detractors, detractors, n)


def ces(values: Iterable[float]) -> CesSummary:
    """Mean CES of answers already on the 1–7 scale."""
    vals = list(values)
    return CesSummary(round(sum(vals) / len(vals), 2) if vals else None, len(vals))


def csat(values: Iterable[int]) -> CsatSummary:
    """CSAT of 1–5 answers."""
    vals = list(values)
    satisfied = sum(1 for v in vals if v >= 4)
    n = len(vals)
    return CsatSummary(round(100 * satisfied / n, 1) if n else None, satisfied, n)


def summarize(rows: Iterable[ScoreRow]) -> Summary:
    """NPS, CES and CSAT over these answers."""
    by_type: dict[str, list[ScoreRow]] = defaultdict(list)
    for row in rows:
        by_type[row.question_type].append(row)
    ces_values = [
        rescale(r.value, (r.scale_min, r.scale_max), CES_REFERENCE_SCALE)
        if r.scale_min is not None and r.scale_max is not None and r.scale_max > r.scale_min
        else float(r.value)
        for r in by_type["ces"]
    ]
    return Summary(
        nps=nps(r.value for r in by_type["nps"]),
        ces=ces(ces_values),
        csat=csat(r.value for r in by_type["csat"]),
    )


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report: overall figures plus the same per flow and per channel."""

    overall: Summary
    by_flow: dict[str, Summary]
    by_channel: dict[str, Summary]
    # Comments written after a survey's thanks or after it expired: kept, never scored.
    late_comments: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The `cxbot report --json` object: overall keys at the top level."""
        return {
            **self.overall.to_dict(),
            "by_flow": {k: v.to_dict() for k, v in self.by_flow.items()},
            "by_channel": {k: v.to_dict() for k, v in self.by_channel.items()},
            "late_comments": self.late_comments,
        }


def build_report(rows: Iterable[ScoreRow], *, late_comments: int = 0) -> Report:
    """Group the answers and summarise each group (`late_comments`: how many are stored)."""
    all_rows = list(rows)
    flows: dict[str, list[ScoreRow]] = defaultdict(list)
    channels: dict[str, list[ScoreRow]] = defaultdict(list)
    for row in all_rows:
        flows[row.flow_id].append(row)
        channels[row.channel].append(row)
    return Report(
        overall=summarize(all_rows),
        by_flow={k: summarize(v) for k, v in sorted(flows.items())},
        by_channel={k: summarize(v) for k, v in sorted(channels.items())},
        late_comments=late_comments,
    )


def format_report(report: Report) -> str:
    """A plain-text table for people."""
    lines = [f"{'':<24} {'NPS':>7} {'n':>5}  {'CES':>5} {'n':>5}  {'CSAT%':>6} {'n':>5}"]

    def row(name: str, s: Summary) -> str:
        def fmt(v: float | None, spec: str) -> str:
            return "—" if v is None else format(v, spec)

        return (
            f"{name[:24]:<24} {fmt(s.nps.score, '+.1f'):>7} {s.nps.n:>5}  "
            f"{fmt(s.ces.mean, '.2f'):>5} {s.ces.n:>5}  {fmt(s.csat.score, '.1f'):>6} {s.csat.n:>5}"
        )

    lines.append(row("all", report.overall))
    for title, groups in (("flow", report.by_flow), ("channel", report.by_channel)):
        for name, summary in groups.items():
            lines.append(row(f"{title}: {name}", summary))
    o = report.overall.nps
    lines.append(
        f"\nNPS: {o.promoters} promoters, {o.passives} passives, {o.detractors} detractors. "
        "CES on a 1–7 scale (higher = easier). CSAT = % of 4–5 answers."
    )
    if report.late_comments:
        lines.append(
            f"Late comments (after the thanks or after a survey closed, not scored): "
            f"{report.late_comments}."
        )
    return "\n".join(lines)
