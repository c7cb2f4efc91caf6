"""Closed days of the analytics page, counted once and kept: what makes a year of 100,000
responses a read of a few hundred small rows instead of a scan of every answer.

A *closed* day is a local calendar day (in the page's time zone) that ended at least
`CLOSED_AFTER` before the page was read. Its counts — score answers by type, value, scale and
breakdown value; text answers by shown label — are stored per (zone, filter signature, day) in
`analyticsday` as JSON, with the *stamp* they were read with. Days still open are counted from
the answers on every read (a day or three, by index).

The stamp is what keeps a kept day right: database triggers (migration 0013) bump
`analyticsstamp.version` of an answer's UTC day whenever something the page counts changes for
an answer more than a day old — a late answer, a label, a correction, an erasure, the
invitation or context that puts a survey in a touchpoint or segment. A local day overlaps one or
two UTC days; its stamp is the sum of their versions, which only grow. A kept day whose stamp
differs from the current one is counted again. Counts and stamps are read in one snapshot, so a
change committed after the read bumps the stamp past the one stored.

Why the one-day guard in the triggers is enough: a day is kept only once it ended two days
before the read, so any answer in it is more than a day old when anything changes it later (a
day of clock difference between the application and the database is tolerated).

Kept days are written after the page is read, in their own short transaction, by
`store_days` (last writer wins; a stale write only costs a recount). Housekeeping forgets days
computed more than `KEEP_DAYS` ago (`forget_days`), so filters nobody looks at again do not
accumulate.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from storage.analytics import (
    AnalyticsQuery,
    KeyedCounts,
    LabelCount,
    ScoreCount,
    keyed_score_counts,
    label_counts,
    top_keys,
)
from storage.database import transaction
from storage.errors import StorageError
from storage.tables import AnalyticsDay, AnalyticsStamp, Answer

CLOSED_AFTER = timedelta(days=2)
KEEP_DAYS = 30
# Runs of missing days closer than this are counted by one query (fewer round trips).
_JOIN_GAP = 7
_FORMAT = 1  # bumped when the JSON layout of a kept day changes: older rows stop matching

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeptDay:
    """A day's counts to keep: written by `store_days` after the read."""

    zone: str
    signature: str
    day: date
    stamp: int
    counts: str


@dataclass(frozen=True, slots=True)
class DayCounts:
    """Counts of local days (every day of the range, closed or open) as (day, encoded row),
    and the closed days counted by this read, to be kept."""

    rows: list[tuple[date, list[Any]]]
    to_keep: list[KeptDay]


# -- days and stamps ----------------------------------------------------------------------------


def day_bounds(zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a local day."""
    start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    return start, end


def _utc_days(zone: ZoneInfo, day: date) -> list[date]:
    start, end = day_bounds(zone, day)
    last = (end - timedelta(microseconds=1)).date()
    first = start.date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _local_day(zone: ZoneInfo, moment: datetime) -> date:
    return _aware(moment).astimezone(zone).date()


def _range_days(
    session: Session, query: AnalyticsQuery, zone: ZoneInfo, now: datetime
) -> list[date] | None:
    """Every local day of the query's range, or None when its bounds are not local midnights
    (a query the cache cannot split into days) or there is nothing to count."""
    since, until = query.since, query.until
    if since is None or until is None:
        first, last = session.execute(
            select(func.min(col(Answer.answered_at)), func.max(col(Answer.answered_at)))
        ).one()
        if first is None:
            return []
        since = since or day_bounds(zone, _local_day(zone, first))[0]
        until = until or day_bounds(zone, max(_local_day(zone, last), _local_day(zone, now)))[1]
    first_day, end_day = _local_day(zone, since), _local_day(zone, until)
    if day_bounds(zone, first_day)[0] != _aware(since):
        return None
    if day_bounds(zone, end_day)[0] != _aware(until):
        return None
    return [first_day + timedelta(days=i) for i in range((end_day - first_day).days)]


def _stamps(session: Session, zone: ZoneInfo, days: Sequence[date]) -> dict[date, int]:
    """Each local day's stamp: the sum of the versions of the UTC days it overlaps."""
    if not days:
        return {}
    first, last = _utc_days(zone, days[0])[0], _utc_days(zone, days[-1])[-1]
    versions = dict(
        session.execute(
            select(col(AnalyticsStamp.day), col(AnalyticsStamp.version)).where(
                col(AnalyticsStamp.day) >= first, col(AnalyticsStamp.day) <= last
            )
        ).all()
    )
    return {day: sum(versions.get(d, 0) for d in _utc_days(zone, day)) for day in days}


def _kept(
    session: Session, zone: str, signature: str, days: Sequence[date]
) -> dict[date, tuple[int, str]]:
    if not days:
        return {}
    rows = session.execute(
        select(col(AnalyticsDay.day), col(AnalyticsDay.stamp), col(AnalyticsDay.counts)).where(
            col(AnalyticsDay.zone) == zone,
            col(AnalyticsDay.signature) == signature,
            col(AnalyticsDay.day) >= days[0],
            col(AnalyticsDay.day) <= days[-1],
        )
    )
    return {day: (int(stamp), str(counts)) for day, stamp, counts in rows}


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days as [first, last] runs, joining runs less than `_JOIN_GAP` days apart."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and (day - runs[-1][1]).days <= _JOIN_GAP:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def signature(kind: str, query: AnalyticsQuery, **extra: str | None) -> str:
    """A stable name for one figure under one filter (the period is not part of it: days are
    kept, weeks and months are summed from them)."""
    spec = {
        "format": _FORMAT,
        "kind": kind,
        "flow": query.flow,
        "channel": query.channel,
        "touchpoint": query.touchpoint,
        "segment": list(query.segment) if query.segment else None,
        **extra,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _by_days(
    session: Session,
    query: AnalyticsQuery,
    now: datetime,
    *,
    sig: str,
    count: Callable[[AnalyticsQuery], list[T]],
    day_of: Callable[[T], date],
    encode: Callable[[T], list[Any]],
) -> DayCounts | None:
    """`count`'s rows over the query's range as (local day, encoded row): kept closed days
    where their stamp still holds, counted for the rest. None when the range cannot be split
    into days."""
    zone = ZoneInfo(query.zone)
    days = _range_days(session, query, zone, now)
    if days is None:
        return None
    # Days are in order and closing is monotonic: the closed ones are a prefix.
    closed = [d for d in days if day_bounds(zone, d)[1] <= _aware(now) - CLOSED_AFTER]
    open_days = days[len(closed) :]
    stamps = _stamps(session, zone, closed)
    kept = _kept(session, query.zone, sig, closed)
    rows: list[tuple[date, list[Any]]] = []
    missing: list[date] = []
    for day in closed:
        found = kept.get(day)
        if found is not None and found[0] == stamps[day]:
            rows.extend((day, item) for item in json.loads(found[1]))
        else:
            missing.append(day)

    def counted(first: date, last: date) -> dict[date, list[list[Any]]]:
        start, end = day_bounds(zone, first)[0], day_bounds(zone, last)[1]
        by_day: dict[date, list[list[Any]]] = defaultdict(list)
        for row in count(replace(query, period="day", since=start, until=end)):
            by_day[day_of(row)].append(encode(row))
        return by_day

    to_keep: list[KeptDay] = []
    for first, last in _runs(missing):
        by_day = counted(first, last)
        for day in (d for d in missing if first <= d <= last):
            items = by_day.get(day, [])
            rows.extend((day, item) for item in items)
            payload = json.dumps(items, separators=(",", ":"))
            to_keep.append(KeptDay(query.zone, sig, day, stamps[day], payload))
    if open_days:
        for day, items in counted(open_days[0], open_days[-1]).items():
            rows.extend((day, item) for item in items)
    return DayCounts(rows, to_keep)


# -- the page's figures -------------------------------------------------------------------------


def period_start(day: date, period: str) -> date:
    """The first day of the day/week (Monday)/month bucket holding `day`."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def scores_by_day(
    session: Session,
    query: AnalyticsQuery,
    now: datetime,
    *,
    breakdown: str | None = None,
    segment_key: str | None = None,
    limit: int = 8,
) -> tuple[KeyedCounts, list[KeptDay]]:
    """`KeyedCounts` for the query (its period's buckets; per breakdown value for the `limit`
    values with the most answers), read from kept days where they hold."""

    def count(q: AnalyticsQuery) -> list[ScoreCount]:
        return keyed_score_counts(session, q, breakdown=breakdown, segment_key=segment_key)

    found = _by_days(
        session,
        query,
        now,
        sig=signature("scores", query, breakdown=breakdown, segment_key=segment_key),
        count=count,
        day_of=lambda r: r.bucket,
        encode=lambda r: [r.key, r.question_type, r.value, r.scale_min, r.scale_max, r.n],
    )
    if found is None:  # bounds off local midnight: counted as asked
        return top_keys(count(query), limit=limit), []
    # Summed into the period's buckets before any object is made (a year by day of a
    # breakdown is tens of thousands of day rows).
    totals: dict[tuple[Any, ...], int] = defaultdict(int)
    starts: dict[date, date] = {}
    for day, (key, kind, value, low, high, n) in found.rows:
        bucket = starts.get(day)
        if bucket is None:
            bucket = starts[day] = period_start(day, query.period)
        totals[(bucket, kind, value, low, high, key)] += n
    rows = [
        ScoreCount(bucket, kind, value, low, high, n, key)
        for (bucket, kind, value, low, high, key), n in totals.items()
    ]
    return top_keys(rows, limit=limit), found.to_keep


def labels_by_day(
    session: Session, query: AnalyticsQuery, now: datetime
) -> tuple[list[LabelCount], list[KeptDay]]:
    """`label_counts` for the query (its period's buckets), read from kept days where they
    hold."""
    found = _by_days(
        session,
        query,
        now,
        sig=signature("labels", query),
        count=lambda q: label_counts(session, q),
        day_of=lambda r: r.bucket,
        encode=lambda r: [r.label, r.n],
    )
    if found is None:
        return label_counts(session, query), []
    totals: dict[tuple[date, str], int] = defaultdict(int)
    for day, (label, n) in found.rows:
        totals[(period_start(day, query.period), label)] += n
    return [LabelCount(b, label, n) for (b, label), n in totals.items()], found.to_keep


# -- keeping and forgetting ---------------------------------------------------------------------


def store_days(engine: Engine, days: Sequence[KeptDay], *, now: datetime) -> int:
    """Keep counted days (insert, or replace what another reader kept); how many. StorageError
    when the database refuses."""
    if not days:
        return 0
    values = [
        {
            "zone": d.zone,
            "signature": d.signature,
            "day": d.day,
            "stamp": d.stamp,
            "counts": d.counts,
            "computed_at": now,
        }
        for d in days
    ]
    table = AnalyticsDay.__table__  # type: ignore[attr-defined]
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["zone", "signature", "day"],
        set_={
            "stamp": stmt.excluded.stamp,
            "counts": stmt.excluded.counts,
            "computed_at": stmt.excluded.computed_at,
        },
    )
    try:
        with transaction(engine) as session:
            for start in range(0, len(values), 500):
                session.execute(stmt, values[start : start + 500])
    except SQLAlchemyError as exc:
        raise StorageError(f"could not keep analytics days: {exc}") from exc
    return len(values)


def forget_days(session: Session, *, now: datetime) -> int:
    """Delete kept days computed more than `KEEP_DAYS` ago; how many."""
    cutoff = now - timedelta(days=KEEP_DAYS)
    result = session.execute(delete(AnalyticsDay).where(col(AnalyticsDay.computed_at) < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
