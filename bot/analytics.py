"""What the analytics page shows, for one filter: the NPS / CES / CSAT trend with margins of
error (overall and per breakdown value), score distributions, sentiment share over time, the
most frequent words and phrases of detractors' and promoters' comments, the invitation funnel
and support response times.

The database does the counting (storage.analytics groups answers by time bucket, type and
value); this module turns the counts into the figures of `bot.trends` (same formulas, same
buckets as `cxbot report --by`), so a page over 100,000 responses reads a few hundred rows.

Scope of each part:

- trend, breakdowns, distributions, sentiment, comments: answers given in the range (local days
  `since`…`until` in `zone`), under every filter;
- funnel: every invitation of the flow / channel / touchpoint (`bot.invitation_report`; it has
  no time or segment filter);
- response times: every review item created in the last 7 and 30 days before `now`, whatever
  the filter (the support team's, not a flow's).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.comment_terms import Terms, top_terms
from bot.errors import AnalyticsFilterError
from bot.flags import CES_REFERENCE_SCALE
from bot.invitation_report import NO_TOUCHPOINT, FunnelReport, build_funnel
from bot.trends import (
    MIN_N,
    Period,
    ScoreKey,
    Trend,
    bucket_range,
    ces_scaled,
    trend_from_counts,
    utc_range,
)
from storage.analytics import (
    UNLABELLED,
    AnalyticsQuery,
    KeyedCounts,
    LabelCount,
    ScoreCount,
    nps_comments,
)
from storage.analytics_cache import KeptDay, labels_by_day, scores_by_day, store_days
from storage.database import Database, Session
from storage.desk_queue import percentile, response_times
from storage.errors import StorageError
from storage.invitation_reports import FunnelRow, funnel_counts
from storage.snapshot_reads import read_together

log = logging.getLogger(__name__)

BREAKDOWNS = ("flow", "channel", "touchpoint")
SEGMENT_PREFIX = "segment:"
BREAKDOWN_LIMIT = 8  # values with the most answers; the rest are summed in `other_n`
COMMENT_LIMIT = 2000  # newest comments per NPS group read for their words (a sample: see README)
# "unclassified": a text in a language without a sentiment model (nlp.routing), its own label.
LABELS = ("negative", "neutral", "positive", "unclassified", UNLABELLED)
RESPONSE_WINDOWS = (7, 30)  # days
# A context key as cxbot stores them (`cxbot invite --context KEY=VALUE`, the API's context).
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_VALUE = 256


@dataclass(frozen=True, slots=True)
class AnalyticsFilter:
    """What the page is asked for. `since` / `until` are local days in `zone`, both included;
    `segment` is (context key, value); `breakdown` is flow, channel, touchpoint or
    `segment:<key>`."""

    by: Period = Period.WEEK
    since: date | None = None
    until: date | None = None
    zone: str = "UTC"
    flow: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    segment: tuple[str, str] | None = None
    breakdown: str | None = None

    def check(self) -> None:
        """Raise AnalyticsFilterError naming the first thing that cannot be answered."""
        if not isinstance(self.by, Period):
            raise AnalyticsFilterError(f"unknown period {self.by!r}: day, week or month")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise AnalyticsFilterError(
                f"the start {self.since} is after the end {self.until}: no day is in both"
            )
        _check_zone(self.zone)
        if self.segment is not None:
            _check_segment(*self.segment)
        if self.breakdown is not None and self.breakdown not in BREAKDOWNS:
            key = self.breakdown.removeprefix(SEGMENT_PREFIX)
            if not self.breakdown.startswith(SEGMENT_PREFIX) or not _KEY.match(key):
                raise AnalyticsFilterError(
                    f"unknown breakdown {self.breakdown!r}: flow, channel, touchpoint or "
                    "segment:<context key>"
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "by": self.by.value,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "zone": self.zone,
            "flow": self.flow,
            "channel": self.channel,
            "touchpoint": self.touchpoint,
            "segment": {"key": self.segment[0], "value": self.segment[1]} if self.segment else None,
            "breakdown": self.breakdown,
        }


def _check_zone(zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise AnalyticsFilterError(
            f"unknown time zone {zone!r}: use an IANA name such as Europe/Berlin"
        ) from None


def _check_segment(key: str, value: str) -> None:
    if not _KEY.match(key):
        raise AnalyticsFilterError(
            f"segment key {key!r}: 1–64 letters, digits, '_', '-' or '.' expected"
        )
    if not value or len(value) > _MAX_VALUE:
        raise AnalyticsFilterError(f"segment {key}: a value of 1–{_MAX_VALUE} characters expected")


def _day(name: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise AnalyticsFilterError(f"{name}: expected a date as YYYY-MM-DD, got {text!r}") from None


def parse_filter(params: Mapping[str, str], *, zone: str = "UTC") -> AnalyticsFilter:
    """A checked filter from text parameters (a query string): `by`, `since`, `until`, `tz`,
    `flow`, `channel`, `touchpoint`, `segment` (KEY=VALUE), `breakdown`; empty means unset,
    `tz` defaults to `zone`. AnalyticsFilterError on anything malformed."""

    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    by = text("by") or Period.WEEK.value
    if by not in {p.value for p in Period}:
        raise AnalyticsFilterError(f"unknown period {by!r}: day, week or month")
    segment: tuple[str, str] | None = None
    if text("segment"):
        key, sep, value = text("segment").partition("=")
        if not sep:
            raise AnalyticsFilterError("segment: expected KEY=VALUE, e.g. plan=pro")
        segment = (key.strip(), value.strip())
    filt = AnalyticsFilter(
        by=Period(by),
        since=_day("since", text("since")),
        until=_day("until", text("until")),
        zone=text("tz") or zone,
        flow=text("flow") or None,
        channel=text("channel") or None,
        touchpoint=text("touchpoint") or None,
        segment=segment,
        breakdown=text("breakdown") or None,
    )
    filt.check()
    return filt


# -- the parts of the page ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Distribution:
    """How the answers spread over each scale: NPS 0–10 with its three groups, CES 1–7 (answers
    on another scale rescaled to 1–7 and rounded), CSAT 1–5."""

    nps: tuple[int, ...]
    ces: tuple[int, ...]
    csat: tuple[int, ...]

    @property
    def promoters(self) -> int:
        """NPS answers 9–10."""
        return sum(self.nps[9:])

    @property
    def passives(self) -> int:
        """NPS answers 7–8."""
        return sum(self.nps[7:9])

    @property
    def detractors(self) -> int:
        """NPS answers 0–6."""
        return sum(self.nps[:7])

    def to_dict(self) -> dict[str, Any]:
        """`{"nps": {"counts": {"0": n, …}, "promoters", "passives", "detractors"}, …}`."""
        return {
            "nps": {
                "counts": {str(v): n for v, n in enumerate(self.nps)},
                "promoters": self.promoters,
                "passives": self.passives,
                "detractors": self.detractors,
                "n": sum(self.nps),
            },
            "ces": {"counts": {str(v + 1): n for v, n in enumerate(self.ces)}, "n": sum(self.ces)},
            "csat": {
                "counts": {str(v + 1): n for v, n in enumerate(self.csat)},
                "n": sum(self.csat),
            },
        }


@dataclass(frozen=True, slots=True)
class SentimentPoint:
    """One bucket's text answers by the label people see (a correction wins over the model)."""

    start: date
    counts: dict[str, int]

    @property
    def n(self) -> int:
        """Text answers in the bucket."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """Counts and shares (% of the bucket's texts, None when it has none) per label."""
        total = self.n
        return {
            "start": self.start.isoformat(),
            "n": total,
            "counts": {label: self.counts.get(label, 0) for label in LABELS},
            "shares": {
                label: round(100 * self.counts.get(label, 0) / total, 1) if total else None
                for label in LABELS
            },
        }


@dataclass(frozen=True, slots=True)
class BreakdownSeries:
    """The trend of one breakdown value ("(none)": surveys without one)."""

    value: str
    n: int  # score answers in the range
    trend: Trend

    def to_dict(self) -> dict[str, Any]:
        """`{"value", "n", "series": [...]}` (points as in the overall trend)."""
        return {"value": self.value, "n": self.n, "series": self.trend.to_dict()["series"]}


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Per-value trends for the `BREAKDOWN_LIMIT` values with the most answers."""

    name: str
    series: list[BreakdownSeries]
    other_n: int  # score answers of the values left out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "name": self.name,
            "values": [s.to_dict() for s in self.series],
            "other_n": self.other_n,
        }


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """Support's times to first acknowledgement and first reply of the review items created in
    the last `days` days (nearest-rank percentiles; None with no item)."""

    days: int
    acknowledged: int
    ack_p50: timedelta | None
    ack_p90: timedelta | None
    replied: int
    reply_p50: timedelta | None
    reply_p90: timedelta | None

    def to_dict(self) -> dict[str, Any]:
        """Durations in seconds."""

        def seconds(value: timedelta | None) -> float | None:
            return round(value.total_seconds(), 1) if value is not None else None

        return {
            "days": self.days,
            "acknowledged": {
                "n": self.acknowledged,
                "p50_s": seconds(self.ack_p50),
                "p90_s": seconds(self.ack_p90),
            },
            "replied": {
                "n": self.replied,
                "p50_s": seconds(self.reply_p50),
                "p90_s": seconds(self.reply_p90),
            },
        }


@dataclass(frozen=True, slots=True)
class Analytics:
    """Everything the analytics page shows for one filter."""

    filter: AnalyticsFilter
    generated_at: datetime
    trend: Trend
    distribution: Distribution
    sentiment: list[SentimentPoint]
    terms: dict[str, Terms]  # "detractors" / "promoters"
    funnel: FunnelReport
    response_times: list[ResponseTimes]
    breakdown: Breakdown | None = None

    def to_dict(self) -> dict[str, Any]:
        """The page's data as JSON: the trend keys as `cxbot report --by --json` prints them."""
        return {
            "filter": self.filter.to_dict(),
            "generated_at": self.generated_at.isoformat(),
            **self.trend.to_dict(),
            "distribution": self.distribution.to_dict(),
            "sentiment": [p.to_dict() for p in self.sentiment],
            "terms": {group: t.to_dict() for group, t in self.terms.items()},
            "funnel": self.funnel.to_dict(),
            "response_times": [r.to_dict() for r in self.response_times],
            "breakdown": self.breakdown.to_dict() if self.breakdown else None,
        }


# -- building it --------------------------------------------------------------------------------


def _buckets(rows: Iterable[ScoreCount]) -> dict[date, dict[ScoreKey, int]]:
    buckets: dict[date, dict[ScoreKey, int]] = defaultdict(dict)
    for r in rows:
        key: ScoreKey = (r.question_type, r.value, r.scale_min, r.scale_max)
        buckets[r.bucket][key] = buckets[r.bucket].get(key, 0) + r.n
    return buckets


def distribution(rows: Iterable[ScoreCount]) -> Distribution:
    """The score distributions of counted answers."""
    nps, ces, csat = [0] * 11, [0] * 7, [0] * 5
    low, high = CES_REFERENCE_SCALE
    for r in rows:
        if r.question_type == "nps" and 0 <= r.value <= 10:
            nps[r.value] += r.n
        elif r.question_type == "ces":
            # Half up: 2.5 (a 3 of 1–5) is a 3 of 1–7 rounded, not Python's banker's 2.
            scaled = int(ces_scaled(r.value, r.scale_min, r.scale_max) + 0.5)
            ces[min(max(scaled, low), high) - low] += r.n
        elif r.question_type == "csat" and 1 <= r.value <= 5:
            csat[r.value - 1] += r.n
    return Distribution(tuple(nps), tuple(ces), tuple(csat))


def _sentiment(
    rows: Iterable[LabelCount], filt: AnalyticsFilter, trend: Trend
) -> list[SentimentPoint]:
    """Label counts per bucket, over the trend's buckets and any other bucket with texts."""
    counts: dict[date, dict[str, int]] = defaultdict(dict)
    for r in rows:
        counts[r.bucket][r.label] = counts[r.bucket].get(r.label, 0) + r.n
    known = [*counts, *(p.start for p in trend.series)]
    starts = bucket_range(known, by=filt.by, since=filt.since, until=filt.until)
    return [SentimentPoint(s, counts.get(s, {})) for s in starts]


def _breakdown_spec(filt: AnalyticsFilter) -> tuple[str | None, str | None]:
    """(breakdown, segment key) for storage.analytics; (None, None) without a breakdown."""
    if filt.breakdown is None:
        return None, None
    if filt.breakdown.startswith(SEGMENT_PREFIX):
        return "segment", filt.breakdown.removeprefix(SEGMENT_PREFIX)
    return filt.breakdown, None


def _times(session: Session, now: datetime) -> list[ResponseTimes]:
    found: list[ResponseTimes] = []
    for days in RESPONSE_WINDOWS:
        stored = response_times(session, since=now - timedelta(days=days))
        found.append(
            ResponseTimes(
                days=days,
                acknowledged=len(stored.acknowledged),
                ack_p50=percentile(stored.acknowledged, 0.5),
                ack_p90=percentile(stored.acknowledged, 0.9),
                replied=len(stored.replied),
                reply_p50=percentile(stored.replied, 0.5),
                reply_p90=percentile(stored.replied, 0.9),
            )
        )
    return found


def _keep(db: Database, days: list[KeptDay], *, now: datetime) -> None:
    """Keep the closed days this read counted; a failure only costs the next read a recount."""
    try:
        store_days(db, days, now=now)
    except StorageError as exc:
        log.warning("analytics days not kept: %s", exc)


def build_analytics(
    db: Database, filt: AnalyticsFilter, *, now: datetime, min_n: int = MIN_N
) -> Analytics:
    """Read and compute the page for `filt` (checked first: AnalyticsFilterError)."""
    filt.check()
    if min_n < 1:
        raise AnalyticsFilterError("min_n must be at least 1")
    start, end = utc_range(filt.since, filt.until, filt.zone)
    query = AnalyticsQuery(
        period=filt.by.value,
        zone=filt.zone,
        since=start,
        until=end,
        flow=filt.flow,
        channel=filt.channel,
        touchpoint=filt.touchpoint,
        segment=filt.segment,
    )
    breakdown_name, segment_key = _breakdown_spec(filt)

    def scores(session: Session) -> tuple[KeyedCounts, list[KeptDay]]:
        return scores_by_day(
            session,
            query,
            now,
            breakdown=breakdown_name,
            segment_key=segment_key,
            limit=BREAKDOWN_LIMIT,
        )

    def funnel(session: Session) -> list[FunnelRow]:
        rows = funnel_counts(
            session, flow_id=filt.flow, channel=filt.channel, since=start, until=end
        )
        return [r for r in rows if filt.touchpoint is None or r.touchpoint == filt.touchpoint]

    # One snapshot for every figure of the page, read side by side where the database can:
    # the slowest reads first.
    (counted, kept_scores), funnel_rows, (labels, kept_labels), detractors, promoters, times = (
        read_together(
            db,
            [
                scores,
                funnel,
                lambda s: labels_by_day(s, query, now),
                lambda s: nps_comments(s, query, group="detractors", limit=COMMENT_LIMIT),
                lambda s: nps_comments(s, query, group="promoters", limit=COMMENT_LIMIT),
                lambda s: _times(s, now),
            ],
        )
    )
    _keep(db, [*kept_scores, *kept_labels], now=now)
    trend = trend_from_counts(
        _buckets(counted.overall),
        by=filt.by,
        zone=filt.zone,
        since=filt.since,
        until=filt.until,
        min_n=min_n,
    )
    span = (trend.series[0].start, trend.series[-1].start) if trend.series else None
    breakdown = None
    if filt.breakdown is not None:
        grouped: dict[str | None, list[ScoreCount]] = defaultdict(list)
        for row in counted.by_key:
            grouped[row.key].append(row)
        series = [
            BreakdownSeries(
                value=top.key if top.key is not None else NO_TOUCHPOINT,
                n=top.n,
                trend=trend_from_counts(
                    _buckets(grouped.get(top.key, [])),
                    by=filt.by,
                    zone=filt.zone,
                    since=span[0] if span else filt.since,
                    until=span[1] if span else filt.until,
                    min_n=min_n,
                ),
            )
            for top in counted.keys
        ]
        total = sum(r.n for r in counted.overall)
        breakdown = Breakdown(filt.breakdown, series, total - sum(t.n for t in counted.keys))
    return Analytics(
        filter=filt,
        generated_at=now,
        trend=trend,
        distribution=distribution(counted.overall),
        sentiment=_sentiment(labels, filt, trend),
        terms={"detractors": top_terms(detractors), "promoters": top_terms(promoters)},
        funnel=build_funnel(funnel_rows),
        response_times=times,
        breakdown=breakdown,
    )
