"""Aggregate queries behind the analytics page: score counts, sentiment labels and comments by
time bucket, computed by the database so that a page over 100,000 responses reads a few hundred
grouped rows instead of every answer.

Buckets are local calendar days, ISO weeks (from Monday) or months in one time zone:

- PostgreSQL: `date_trunc(period, answered_at AT TIME ZONE zone)`. The columns are `timestamp
  with time zone`, so one `AT TIME ZONE` gives the local wall time (a second one, as for naive
  columns, would shift the wrong way).
- SQLite stores naive UTC text and knows no time zones. The zone's UTC offsets over the queried
  range (they change at daylight-saving transitions) are worked out here with `zoneinfo` and
  passed as one `CASE` that picks each answer's offset, so `date(answered_at, offset, …)` is the
  local day, then its week's Monday or its month's 1st. Exact for every zone, half-hour and
  quarter-hour offsets included.

Either way each grouped row carries the first day of its bucket (a `date`).

Filters: answered in [since, until) (aware or naive UTC), flow, channel, touchpoint (of an
invitation that opened the survey), and a segment: one key of the survey's context equal to a
value (compared as text on both databases: `{"tier": 3}` matches "3").

Each function is one statement. A breakdown groups by its value too (every value:
`top_keys` picks the ones with most answers in Python). The shown sentiment label
and a survey's touchpoint are looked up per answer by index: the analytics page counts a few
days at a time (`storage.analytics_cache` keeps closed days), where a hash join would read every
label and invitation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from storage.tables import Answer, Conversation, Invitation, LabelCorrection, SentimentScore

SCORE_TYPES = ("nps", "ces", "csat")
TEXT_TYPE = "text"
PERIODS = ("day", "week", "month")
BREAKDOWNS = ("flow", "channel", "touchpoint", "segment")
UNLABELLED = "unlabelled"
# NPS groups whose comments are read for their words: (lowest, highest) score.
NPS_GROUPS = {"detractors": (0, 6), "promoters": (9, 10)}


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """Which answers, bucketed how. `segment` is (context key, value); `zone` an IANA name that
    the caller has checked."""

    period: str = "week"
    zone: str = "UTC"
    since: datetime | None = None
    until: datetime | None = None
    flow: str | None = None
    channel: str | None = None
    touchpoint: str | None = None
    segment: tuple[str, str] | None = None


class ScoreCount(NamedTuple):
    """How many score answers share a bucket, breakdown value, type, value and scale (a named
    tuple: a year of a breakdown by day is tens of thousands of them, made fast)."""

    bucket: date
    question_type: str
    value: int
    scale_min: int | None
    scale_max: int | None
    n: int
    key: str | None = None  # the breakdown value (None: no breakdown, or the survey has none)


class LabelCount(NamedTuple):
    """How many text answers of a bucket show one sentiment label (or "unlabelled")."""

    bucket: date
    label: str
    n: int


@dataclass(frozen=True, slots=True)
class KeyCount:
    """A breakdown value and its number of score answers under the filters."""

    key: str | None
    n: int


# -- buckets ------------------------------------------------------------------------------------


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def offset_changes(zone: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (seconds) at `first` and each change of it up to `last`: a list of
    (naive UTC instant from which it holds, offset), the first item at `first`.

    Steps a day at a time and bisects to the second where the offset differs between two steps
    (zones change their offset a few times a year at most, never twice within a day).
    """

    def offset(second: int) -> int:
        delta = datetime.fromtimestamp(second, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    def naive(second: int) -> datetime:
        return datetime.fromtimestamp(second, UTC).replace(tzinfo=None)

    start = int(_utc_naive(first).replace(tzinfo=UTC).timestamp())
    end = int(_utc_naive(last).replace(tzinfo=UTC).timestamp())
    changes = [(_utc_naive(first), offset(start))]
    current = start
    while current < end:
        step = min(current + 86400, end)
        if offset(step) != changes[-1][1]:
            low, high = current, step  # the old offset holds at low, the new one at high
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == changes[-1][1]:
                    low = middle
                else:
                    high = middle
            changes.append((naive(high), offset(high)))
        current = step
    return changes


def _sqlite_offset(column: Any, changes: list[tuple[datetime, int]]) -> Any:
    """SQLite date modifier moving a stored UTC time to local time: '+3600 seconds', picked by
    a CASE over the offset changes."""

    def modifier(seconds: int) -> str:
        return f"{seconds:+d} seconds"

    if len(changes) == 1:
        return literal(modifier(changes[0][1]))
    whens = [
        (column < literal(start, DateTime()), modifier(before))
        for (_, before), (start, _) in pairwise(changes)
    ]
    return case(*whens, else_=modifier(changes[-1][1]))


def _data_span(session: Session) -> tuple[datetime, datetime] | None:
    """The first and last stored answer times (an index lookup each)."""
    first, last = session.execute(
        select(func.min(Answer.answered_at), func.max(Answer.answered_at))
    ).one()
    if first is None or last is None:
        return None
    return first, last


def _bucket_expr(session: Session, query: AnalyticsQuery, column: Any) -> Any:
    """The first local day of the bucket of `column` (a stored time), per dialect."""
    if query.period not in PERIODS:
        raise ValueError(f"unknown period {query.period!r}")
    if session.get_bind().dialect.name == "postgresql":
        local = func.timezone(query.zone, column)  # timestamptz AT TIME ZONE zone
        return cast(func.date_trunc(query.period, local), Date)
    span = _data_span(session)
    start = query.since or (span[0] if span else datetime(1970, 1, 1))
    end = query.until or (span[1] if span else start)
    # A day's margin either side: the bounds are instants, the stored values may be equal to them.
    changes = offset_changes(
        ZoneInfo(query.zone), start - timedelta(days=1), max(start, end) + timedelta(days=1)
    )
    modifiers = {"day": (), "week": ("-6 days", "weekday 1"), "month": ("start of month",)}
    return func.date(column, _sqlite_offset(column, changes), *modifiers[query.period])


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# -- filters ------------------------------------------------------------------------------------


def _context_value(context: Any, key: str) -> Any:
    # As text on both databases: SQLite's json_extract gives 3 for {"k": 3}, PostgreSQL's ->> "3".
    return cast(context[key].as_string(), String)


def _filters(answer: Any, query: AnalyticsQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [answer.skipped == false(), answer.late == false()]
    if query.since is not None:
        where.append(answer.answered_at >= query.since)
    if query.until is not None:
        where.append(answer.answered_at < query.until)
    if query.flow is not None:
        where.append(answer.flow_id == query.flow)
    if query.channel is not None:
        where.append(answer.channel == query.channel)
    if query.touchpoint is not None:
        where.append(
            answer.conversation_id.in_(
                select(col(Invitation.conversation_id)).where(
                    col(Invitation.touchpoint) == query.touchpoint
                )
            )
        )
    if query.segment is not None:
        key, value = query.segment
        # Looked up per answer by the survey's primary key, not as `IN (surveys whose context
        # matches)`: the planner cannot estimate a JSON key's share, guesses a few hundred
        # surveys, and then probes the answers of every matching survey (30,000 of 100,000 for
        # a common segment) where the page needs only the last days' answers or 2,000 comments.
        survey: Any = aliased(Conversation)
        segment = (
            select(_context_value(survey.context, key))
            .where(survey.id == answer.conversation_id)
            .correlate_except(survey)
            .scalar_subquery()
        )
        where.append(segment == value)
    return where


def _score_filters(query: AnalyticsQuery) -> list[ColumnElement[bool]]:
    return [
        col(Answer.question_type).in_(SCORE_TYPES),
        col(Answer.value_int).is_not(None),
        *_filters(Answer, query),
    ]


def _breakdown_source(stmt: Select[Any], breakdown: str, segment_key: str | None) -> Any:
    """`stmt` joined to what the breakdown needs, and the breakdown's value expression."""
    if breakdown == "flow":
        return stmt, col(Answer.flow_id)
    if breakdown == "channel":
        return stmt, col(Answer.channel)
    if breakdown == "touchpoint":
        # One touchpoint per survey, as the desk names it: the smallest of its invitations'.
        # Looked up per answer by index: the page counts days a few at a time (kept days).
        touchpoint = (
            select(func.min(Invitation.touchpoint))
            .where(col(Invitation.conversation_id) == col(Answer.conversation_id))
            .correlate(Answer)
            .scalar_subquery()
        )
        return stmt, touchpoint
    if breakdown == "segment" and segment_key:
        joined = stmt.join(Conversation, col(Conversation.id) == col(Answer.conversation_id))
        return joined, _context_value(col(Conversation.context), segment_key)
    raise ValueError(f"unknown breakdown {breakdown!r}")


# -- scores -------------------------------------------------------------------------------------


def _scored(session: Session, query: AnalyticsQuery) -> list[Any]:
    return [
        _bucket_expr(session, query, col(Answer.answered_at)).label("bucket"),
        col(Answer.question_type).label("question_type"),
        col(Answer.value_int).label("value"),
        col(Answer.scale_min).label("scale_min"),
        col(Answer.scale_max).label("scale_max"),
    ]


def score_counts(session: Session, query: AnalyticsQuery) -> list[ScoreCount]:
    """Score answers (NPS, CES, CSAT; not skipped, not late) counted by bucket, type, value and
    scale under the filters."""
    inner = select(*_scored(session, query)).where(*_score_filters(query)).subquery("scored")
    keys = [inner.c.bucket, inner.c.question_type, inner.c.value, inner.c.scale_min]
    keys.append(inner.c.scale_max)
    grouped = select(*keys, func.count().label("n")).group_by(*keys)
    return [
        ScoreCount(_as_date(bucket), str(kind), int(value), low, high, int(n))
        for bucket, kind, value, low, high, n in session.execute(grouped)
    ]


@dataclass(frozen=True, slots=True)
class KeyedCounts:
    """A breakdown's counts: every answer under the filters, the `limit` values with the most
    answers (most first), and the counts of those values (`ScoreCount.key`)."""

    overall: list[ScoreCount]
    keys: list[KeyCount]
    by_key: list[ScoreCount]


def keyed_score_counts(
    session: Session,
    query: AnalyticsQuery,
    *,
    breakdown: str | None = None,
    segment_key: str | None = None,
) -> list[ScoreCount]:
    """`score_counts` per value of a breakdown (flow, channel, touchpoint, or the segment key's
    value), every value; `key` None without a breakdown, or for a survey without a value (not
    invited, no such key)."""
    scored_columns = select(*_scored(session, query)).select_from(Answer)
    if breakdown is None:
        stmt, key = scored_columns, null()
    else:
        stmt, key = _breakdown_source(scored_columns, breakdown, segment_key)
    inner = stmt.add_columns(key.label("key")).where(*_score_filters(query)).subquery("scored")
    keys = [inner.c.bucket, inner.c.question_type, inner.c.value, inner.c.scale_min]
    keys += [inner.c.scale_max, inner.c.key]
    grouped = select(*keys, func.count().label("n")).group_by(*keys)
    return [
        ScoreCount(
            _as_date(bucket),
            str(kind),
            int(value),
            low,
            high,
            int(n),
            None if name is None else str(name),
        )
        for bucket, kind, value, low, high, name, n in session.execute(grouped)
    ]


def top_keys(rows: Iterable[ScoreCount], *, limit: int = 8) -> KeyedCounts:
    """Keyed counts (`keyed_score_counts`) as `KeyedCounts`: summed over the keys, the `limit`
    keys with the most answers (most first, then by name), and those keys' rows."""
    rows = list(rows)
    totals: dict[tuple[Any, ...], int] = defaultdict(int)
    per_key: dict[str | None, int] = defaultdict(int)
    for r in rows:
        totals[(r.bucket, r.question_type, r.value, r.scale_min, r.scale_max)] += r.n
        per_key[r.key] += r.n
    tops = sorted(per_key.items(), key=lambda item: (-item[1], item[0] or ""))[:limit]
    chosen = {key for key, _ in tops}
    return KeyedCounts(
        overall=[
            ScoreCount(bucket, kind, value, low, high, n)
            for (bucket, kind, value, low, high), n in totals.items()
        ],
        keys=[KeyCount(key, n) for key, n in tops],
        by_key=[r for r in rows if r.key in chosen],
    )


def breakdown_counts(
    session: Session,
    query: AnalyticsQuery,
    *,
    breakdown: str,
    segment_key: str | None = None,
    limit: int = 8,
) -> KeyedCounts:
    """`score_counts` overall and per value of a breakdown for its `limit` values with the most
    answers (`keyed_score_counts`, then `top_keys`)."""
    keyed = keyed_score_counts(session, query, breakdown=breakdown, segment_key=segment_key)
    return top_keys(keyed, limit=limit)


# -- sentiment ----------------------------------------------------------------------------------


def _newest_label(model: Any, label: Any) -> Any:
    """`label` of the answer's newest `model` row (highest id), correlated: two index lookups
    per text."""
    newest = (
        select(func.max(model.id))
        .where(model.answer_id == col(Answer.id))
        .correlate_except(model)
        .scalar_subquery()
    )
    return select(label).where(model.id == newest).correlate_except(model).scalar_subquery()


def _kind(answer: Any, question_type: str) -> ColumnElement[bool]:
    # Written into the SQL, not bound: SQLite uses a partial index (migration 0014) only when
    # the query's own terms imply its predicate, which a bound parameter does not.
    kind: ColumnElement[bool] = answer.question_type == literal(question_type, literal_execute=True)
    return kind


def _text_filters(answer: Any, query: AnalyticsQuery) -> list[ColumnElement[bool]]:
    return [_kind(answer, TEXT_TYPE), *_filters(answer, query)]


def label_counts(session: Session, query: AnalyticsQuery) -> list[LabelCount]:
    """Text answers counted by bucket and the label people see: the newest correction, else the
    newest model label, else "unlabelled"."""
    # Index lookups per text: the page counts a few days at a time (kept days), where joining
    # every answer's newest label by hash would read all of them.
    texts = select().select_from(Answer)
    shown = func.coalesce(
        _newest_label(LabelCorrection, col(LabelCorrection.new_label)),
        _newest_label(SentimentScore, col(SentimentScore.label)),
        UNLABELLED,
    )
    inner = (
        texts.add_columns(
            _bucket_expr(session, query, col(Answer.answered_at)).label("bucket"),
            shown.label("label"),
        )
        .where(*_text_filters(Answer, query))
        .subquery("labelled")
    )
    grouped = select(inner.c.bucket, inner.c.label, func.count().label("n")).group_by(
        inner.c.bucket, inner.c.label
    )
    return [
        LabelCount(_as_date(bucket), str(label), int(n))
        for bucket, label, n in session.execute(grouped)
    ]


# -- comments -----------------------------------------------------------------------------------


def nps_comments(
    session: Session, query: AnalyticsQuery, *, group: str, limit: int = 5000
) -> list[str]:
    """The newest `limit` comments (text answers, not empty) in the range written in a survey
    whose NPS answer is in `group` ("detractors" 0–6 or "promoters" 9–10), newest first."""
    low, high = NPS_GROUPS[group]
    nps: Any = aliased(Answer)
    in_group = exists().where(
        nps.conversation_id == col(Answer.conversation_id),
        _kind(nps, "nps"),
        nps.skipped == false(),
        nps.late == false(),
        nps.value_int.between(low, high),
    )
    text = func.coalesce(col(Answer.value_text), col(Answer.raw_text))
    stmt = (
        select(text)
        .where(*_text_filters(Answer, query), in_group, and_(text.is_not(None), text != ""))
        .order_by(col(Answer.answered_at).desc(), col(Answer.id).desc())
        .limit(limit)
    )
    return [str(t) for t in session.execute(stmt).scalars()]
