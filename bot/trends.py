"""NPS, CES and CSAT over time, each point with its n and a 95% margin of error.

`cxbot report --by day|week|month` prints this; `--json` gives the series. Answers are put in
buckets by their local day in one time zone (a week starts on Monday, a month on its 1st), so a
Monday 00:30 in Berlin counts in that week even though it is Sunday in UTC. Buckets run from the
first answer's (or `--since`'s) to the last answer's, empty ones included, so that a chart's time
axis has no silent gaps.

Margins of error (half-width of the 95% interval, in the score's own unit; z = 1.96):

- NPS: with p and d the promoter and detractor shares, var = p + d − (p − d)², and
  moe = 100 · z · √(var / n) (NPS points);
- CES: the mean's standard error with the sample standard deviation: z · s / √n;
- CSAT (% satisfied): the proportion's standard error, 100 · z · √(q (1 − q) / n).

A point with fewer than `min_n` answers (default 10) has its score but no margin (`moe` null):
the normal approximation says nothing useful there, and charts mark such points.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.flags import CES_REFERENCE_SCALE, rescale
from bot.metrics import ces, csat, nps
from storage.reports import ScoreRow

Z95 = 1.959963984540054
MIN_N = 10


class Period(StrEnum):
    """The width of one point of a trend."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def bucket_start(day: date, period: Period) -> date:
    """The first day of the bucket that `day` falls in."""
    if period == Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period == Period.MONTH:
        return day.replace(day=1)
    return day


def next_start(start: date, period: Period) -> date:
    """The first day of the bucket after the one starting at `start`."""
    if period == Period.DAY:
        return start + timedelta(days=1)
    if period == Period.WEEK:
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day of a stored moment (naive means UTC) in `zone`."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).date()


def nps_moe(promoters: int, detractors: int, n: int) -> float:
    """Half-width of the 95% interval of an NPS from n answers, in NPS points."""
    p, d = promoters / n, detractors / n
    variance = p + d - (p - d) ** 2
    return 100 * Z95 * math.sqrt(variance / n)


def mean_moe(values: list[float]) -> float:
    """Half-width of the 95% interval of the mean of `values` (sample standard deviation)."""
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return Z95 * math.sqrt(variance / n)


def share_moe(hits: int, n: int) -> float:
    """Half-width of the 95% interval of a percentage `hits / n`, in percentage points."""
    q = hits / n
    return 100 * Z95 * math.sqrt(q * (1 - q) / n)


@dataclass(frozen=True, slots=True)
class NpsPoint:
    """NPS of one bucket: score (−100…100), n, margin of error and the three groups."""

    score: float | None
    n: int
    moe: float | None
    promoters: int
    passives: int
    detractors: int


@dataclass(frozen=True, slots=True)
class CesPoint:
    """Mean CES (1–7) of one bucket with n and margin of error."""

    mean: float | None
    n: int
    moe: float | None


@dataclass(frozen=True, slots=True)
class CsatPoint:
    """CSAT (% satisfied) of one bucket with n and margin of error."""

    score: float | None
    n: int
    moe: float | None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One bucket of the trend: its first day and the three scores."""

    start: date
    nps: NpsPoint
    ces: CesPoint
    csat: CsatPoint

    def to_dict(self) -> dict[str, Any]:
        """The point as `cxbot report --json --by` prints it."""
        return {
            "start": self.start.isoformat(),
            "nps": _rounded(_fields(self.nps)),
            "ces": _rounded(_fields(self.ces)),
            "csat": _rounded(_fields(self.csat)),
        }


def _fields(point: NpsPoint | CesPoint | CsatPoint) -> dict[str, Any]:
    return {name: getattr(point, name) for name in point.__slots__}


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in values.items()}


@dataclass(frozen=True, slots=True)
class Trend:
    """The series of a trend, oldest first."""

    by: Period
    time_zone: str
    min_n: int
    series: list[TrendPoint]

    def to_dict(self) -> dict[str, Any]:
        """`{"by", "time_zone", "min_n", "series": [...]}` (the `--json` contract)."""
        return {
            "by": self.by.value,
            "time_zone": self.time_zone,
            "min_n": self.min_n,
            "series": [p.to_dict() for p in self.series],
        }


def _ces_value(row: ScoreRow) -> float:
    if row.scale_min is not None and row.scale_max is not None and row.scale_max > row.scale_min:
        return rescale(row.value, (row.scale_min, row.scale_max), CES_REFERENCE_SCALE)
    return float(row.value)


def _point(start: date, rows: list[ScoreRow], min_n: int) -> TrendPoint:
    nps_values = [r.value for r in rows if r.question_type == "nps"]
    ces_values = [_ces_value(r) for r in rows if r.question_type == "ces"]
    csat_values = [r.value for r in rows if r.question_type == "csat"]
    n_sum, c_sum, s_sum = nps(nps_values), ces(ces_values), csat(csat_values)
    enough = max(min_n, 2)  # a sample standard deviation needs two answers at least
    return TrendPoint(
        start=start,
        nps=NpsPoint(
            score=n_sum.score,
            n=n_sum.n,
            moe=nps_moe(n_sum.promoters, n_sum.detractors, n_sum.n) if n_sum.n >= enough else None,
            promoters=n_sum.promoters,
            passives=n_sum.passives,
            detractors=n_sum.detractors,
        ),
        ces=CesPoint(
            mean=c_sum.mean,
            n=c_sum.n,
            moe=mean_moe(ces_values) if c_sum.n >= enough else None,
        ),
        csat=CsatPoint(
            score=s_sum.score,
            n=s_sum.n,
            moe=share_moe(s_sum.satisfied, s_sum.n) if s_sum.n >= enough else None,
        ),
    )


def _starts(first: date, last: date, period: Period) -> Iterator[date]:
    start = bucket_start(first, period)
    while start <= last:
        yield start
        start = next_start(start, period)


def build_trend(
    rows: Iterable[ScoreRow],
    *,
    by: Period,
    zone: str = "UTC",
    since: date | None = None,
    until: date | None = None,
    min_n: int = MIN_N,
) -> Trend:
    """Bucket the answers by local day in `zone` and score each bucket (module doc).

    The series runs from `since` (else the first answer) to `until` (else the last answer);
    it is empty when there are no answers and no range was given.
    """
    tz = ZoneInfo(zone)
    buckets: dict[date, list[ScoreRow]] = defaultdict(list)
    days: list[date] = []
    for row in rows:
        if row.answered_at is None:
            continue
        day = local_day(row.answered_at, tz)
        days.append(day)
        buckets[bucket_start(day, by)].append(row)
    first = since or (min(days) if days else None)
    last = until or (max(days) if days else None)
    if first is None or last is None:
        return Trend(by=by, time_zone=zone, min_n=min_n, series=[])
    series = [_point(s, buckets.get(s, []), min_n) for s in _starts(first, last, by)]
    return Trend(by=by, time_zone=zone, min_n=min_n, series=series)


def utc_range(
    since: date | None, until: date | None, zone: str
) -> tuple[datetime | None, datetime | None]:
    """The stored-time bounds [start, end) of local days `since`…`until` (inclusive) in `zone`,
    widened to whole buckets by the caller's query; None where open."""
    tz = ZoneInfo(zone)
    start = datetime.combine(since, datetime.min.time(), tz).astimezone(UTC) if since else None
    end = (
        datetime.combine(until + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
        if until
        else None
    )
    return start, end


def _cell(value: float | None, moe: float | None, n: int, spec: str) -> str:
    if value is None:
        return "–"
    margin = f" ±{moe:{spec}}" if moe is not None else " (few)"
    return f"{value:{spec}}{margin} n={n}"


def format_trend(trend: Trend) -> str:
    """The trend as a table for people: one line per bucket, scores ± margin and n."""
    head = f"{trend.by.value.capitalize():<10}  {'NPS':<22}  {'CES':<22}  {'CSAT %':<22}"
    lines = [head, "-" * len(head)]
    for p in trend.series:
        lines.append(
            f"{p.start.isoformat():<10}  "
            f"{_cell(p.nps.score, p.nps.moe, p.nps.n, '.1f'):<22}  "
            f"{_cell(p.ces.mean, p.ces.moe, p.ces.n, '.2f'):<22}  "
            f"{_cell(p.csat.score, p.csat.moe, p.csat.n, '.1f'):<22}"
        )
    if not trend.series:
        lines.append("no answers in this range")
    lines.append(
        f"\n± is the 95% margin of error; (few): fewer than {trend.min_n} answers, no margin. "
        f"Days in {trend.time_zone}."
    )
    return "\n".join(lines)


# -- the same from counts -----------------------------------------------------------------------

# (question type, value, scale_min, scale_max): what distinguishes one score answer's figure.
ScoreKey = tuple[str, int, int | None, int | None]


def ces_scaled(value: int, scale_min: int | None, scale_max: int | None) -> float:
    """A CES answer on the 1–7 reference scale (answers on another scale rescaled)."""
    if scale_min is not None and scale_max is not None and scale_max > scale_min:
        return rescale(value, (scale_min, scale_max), CES_REFERENCE_SCALE)
    return float(value)


def point_from_counts(start: date, counts: Mapping[ScoreKey, int], min_n: int) -> TrendPoint:
    """One bucket's point from counted answers (how many of each type, value and scale), with
    the figures `build_trend` gives for the same answers listed one by one."""
    nps_n = promoters = detractors = 0
    ces_values: list[tuple[float, int]] = []
    csat_n = satisfied = 0
    for (kind, value, low, high), n in counts.items():
        if kind == "nps":
            nps_n += n
            promoters += n if value >= 9 else 0
            detractors += n if value <= 6 else 0
        elif kind == "ces":
            ces_values.append((ces_scaled(value, low, high), n))
        elif kind == "csat":
            csat_n += n
            satisfied += n if value >= 4 else 0
    ces_n = sum(n for _, n in ces_values)
    ces_mean = sum(v * n for v, n in ces_values) / ces_n if ces_n else None
    enough = max(min_n, 2)  # as in `_point`
    ces_moe = None
    if ces_mean is not None and ces_n >= enough:
        variance = sum(n * (v - ces_mean) ** 2 for v, n in ces_values) / (ces_n - 1)
        ces_moe = Z95 * math.sqrt(variance / ces_n)
    return TrendPoint(
        start=start,
        nps=NpsPoint(
            score=round(100 * (promoters - detractors) / nps_n, 1) if nps_n else None,
            n=nps_n,
            moe=nps_moe(promoters, detractors, nps_n) if nps_n >= enough else None,
            promoters=promoters,
            passives=nps_n - promoters - detractors,
            detractors=detractors,
        ),
        ces=CesPoint(
            mean=round(ces_mean, 2) if ces_mean is not None else None, n=ces_n, moe=ces_moe
        ),
        csat=CsatPoint(
            score=round(100 * satisfied / csat_n, 1) if csat_n else None,
            n=csat_n,
            moe=share_moe(satisfied, csat_n) if csat_n >= enough else None,
        ),
    )


def bucket_range(
    starts: Iterable[date], *, by: Period, since: date | None, until: date | None
) -> list[date]:
    """The bucket starts of a series, as `build_trend` spans them: from `since` (else the first
    bucket with data) to `until` (else the last), empty ones included; [] with neither."""
    known = [bucket_start(s, by) for s in starts]
    first = since or (min(known) if known else None)
    last = until or (max(known) if known else None)
    if first is None or last is None:
        return []
    return list(_starts(first, last, by))


def trend_from_counts(
    buckets: Mapping[date, Mapping[ScoreKey, int]],
    *,
    by: Period,
    zone: str = "UTC",
    since: date | None = None,
    until: date | None = None,
    min_n: int = MIN_N,
) -> Trend:
    """The trend from answers counted per bucket (keys: each bucket's first local day), equal
    to `build_trend` over the same answers; the database does the bucketing
    (storage.analytics)."""
    merged: dict[date, dict[ScoreKey, int]] = defaultdict(dict)
    for start, counts in buckets.items():
        into = merged[bucket_start(start, by)]
        for key, n in counts.items():
            into[key] = into.get(key, 0) + n
    series = [
        point_from_counts(s, merged.get(s, {}), min_n)
        for s in bucket_range(merged, by=by, since=since, until=until)
    ]
    return Trend(by=by, time_zone=zone, min_n=min_n, series=series)
