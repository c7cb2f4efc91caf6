"""Kept closed days of the analytics page on SQLite and PostgreSQL: the same figures as a full
count, in every period and breakdown; a change to an old answer (late answer, label,
correction, erasure, touchpoint, context) is counted again through the triggers' stamps; days
still open are always counted; bounds off local midnight are counted as asked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import col

from storage.analytics import (
    AnalyticsQuery,
    KeyedCounts,
    keyed_score_counts,
    label_counts,
    top_keys,
)
from storage.analytics_cache import (
    CLOSED_AFTER,
    KEEP_DAYS,
    day_bounds,
    forget_days,
    labels_by_day,
    period_start,
    scores_by_day,
    store_days,
)
from storage.database import transaction
from storage.tables import (
    AnalyticsDay,
    AnalyticsStamp,
    Answer,
    Conversation,
    Invitation,
    InvitationStatus,
    LabelCorrection,
    SentimentScore,
)
from tests.fakes.analytics_data import Responses

ZONE = "Europe/Berlin"
TZ = ZoneInfo(ZONE)


def _now() -> datetime:
    # Real time: the triggers compare answer times with the database's clock.
    return datetime.now(UTC)


def _query(
    now: datetime, *, days: int = 20, period: str = "day", **where: object
) -> AnalyticsQuery:
    today = now.astimezone(TZ).date()
    since = day_bounds(TZ, today - timedelta(days=days))[0]
    until = day_bounds(TZ, today)[1]
    return AnalyticsQuery(period=period, zone=ZONE, since=since, until=until, **where)  # type: ignore[arg-type]


def _seed(db: Engine, now: datetime) -> Responses:
    data = Responses(db)
    for back in range(0, 18, 3):
        at = now - timedelta(days=back, hours=1)
        data.add(at, nps=back % 11, ces=4, comment="slow", label="negative", touchpoint="delivery")
        data.add(at, nps=9, csat=5, comment="great", label="positive", context={"plan": "pro"})
    return data


def _comparable(counts: KeyedCounts) -> tuple[object, ...]:
    return (
        sorted(counts.overall),
        counts.keys,
        sorted(counts.by_key, key=lambda r: (r.key or "", *r[:6])),
    )


def _full(db: Engine, query: AnalyticsQuery, **breakdown: str | None) -> KeyedCounts:
    with transaction(db) as s:
        return top_keys(keyed_score_counts(s, query, **breakdown))


def test_kept_days_give_what_a_full_count_gives(db: Engine) -> None:
    now = _now()
    _seed(db, now)
    for breakdown in (
        {},
        {"breakdown": "touchpoint"},
        {"breakdown": "segment", "segment_key": "plan"},
    ):
        for period in ("day", "week", "month"):
            query = _query(now, period=period)
            with transaction(db) as s:
                first, to_keep = scores_by_day(s, query, now, **breakdown)  # type: ignore[arg-type]
            assert _comparable(first) == _comparable(_full(db, query, **breakdown))
            store_days(db, to_keep, now=now)
            with transaction(db) as s:
                again, more = scores_by_day(s, query, now, **breakdown)  # type: ignore[arg-type]
            assert more == []  # every closed day was kept
            assert _comparable(again) == _comparable(first)
    with transaction(db) as s:
        kept = s.scalar(select(func.count()).select_from(AnalyticsDay))
        closed = [
            d for d in range(21) if day_bounds(TZ, query_day(now, d))[1] <= now - CLOSED_AFTER
        ]
    assert kept == 3 * len(closed)  # one row per closed day and breakdown, whatever the period


def query_day(now: datetime, back: int) -> date:
    """The local day `back` days before today."""
    return now.astimezone(TZ).date() - timedelta(days=back)


def _labels(db: Engine, now: datetime, period: str = "day") -> dict[tuple[date, str], int]:
    with transaction(db) as s:
        rows, to_keep = labels_by_day(s, _query(now, period=period), now)
    store_days(db, to_keep, now=now)
    return {(r.bucket, r.label): r.n for r in rows}


def test_labels_by_day_match_label_counts_in_every_period(db: Engine) -> None:
    now = _now()
    _seed(db, now)
    for period in ("day", "week", "month"):
        query = _query(now, period=period)
        with transaction(db) as s:
            expected = {(r.bucket, r.label): r.n for r in label_counts(s, query)}
        assert _labels(db, now, period) == expected
        assert _labels(db, now, period) == expected  # from kept days


def test_a_change_to_an_old_answer_is_counted_again(db: Engine) -> None:
    now = _now()
    data = _seed(db, now)
    old = now - timedelta(days=9, hours=1)
    old_day = old.astimezone(TZ).date()
    before = _labels(db, now)
    assert before[(old_day, "negative")] == 1
    # A person corrects the old comment's label.
    with transaction(db) as s:
        old_text = s.scalars(
            select(col(Answer.id)).where(
                col(Answer.question_type) == "text", col(Answer.answered_at) == old
            )
        ).first()
        assert old_text is not None
        s.add(
            LabelCorrection(
                answer_id=old_text, old_label="negative", new_label="neutral", actor="tests"
            )
        )
    after = _labels(db, now)
    assert after[(old_day, "neutral")] == 1 and (old_day, "negative") not in after
    # The model relabels it (a newer score row); the correction still wins.
    with transaction(db) as s:
        s.add(
            SentimentScore(
                answer_id=old_text,
                label="positive",
                confidence=0.8,
                model_id="m",
                model_version="v2",
            )
        )
    assert _labels(db, now)[(old_day, "neutral")] == 1
    # An answer arrives late for an old day (an import), then the survey is erased.
    data.add(old, nps=0)
    query = _query(now)
    with transaction(db) as s:
        scores, _ = scores_by_day(s, query, now)
    assert _comparable(scores) == _comparable(_full(db, query))
    with transaction(db) as s:
        conversation = s.scalars(
            select(col(Answer.conversation_id)).where(
                col(Answer.answered_at) == old, col(Answer.value_int) == 0
            )
        ).one()
        s.execute(delete(Answer).where(col(Answer.conversation_id) == conversation))
    with transaction(db) as s:
        scores, _ = scores_by_day(s, query, now)
    assert _comparable(scores) == _comparable(_full(db, query))


def test_touchpoint_and_context_changes_are_counted_again(db: Engine) -> None:
    now = _now()
    _seed(db, now)
    query = _query(now)
    old = now - timedelta(days=12, hours=1)
    for breakdown in ({"breakdown": "touchpoint"}, {"breakdown": "segment", "segment_key": "plan"}):
        with transaction(db) as s:
            _, to_keep = scores_by_day(s, query, now, **breakdown)  # type: ignore[arg-type]
        store_days(db, to_keep, now=now)
    with transaction(db) as s:
        uninvited = s.scalars(
            select(Conversation)
            .join(Answer, col(Answer.conversation_id) == Conversation.id)
            .where(col(Answer.answered_at) == old, col(Answer.question_type) == "csat")
        ).one()
        s.add(
            Invitation(
                source="tests",
                interaction_id="late-link",
                customer_id=uninvited.customer_id,
                channel="telegram",
                user_id="x",
                touchpoint="checkout",
                flow_id="delivery",
                status=InvitationStatus.SENT,
                conversation_id=uninvited.id,
            )
        )
        s.execute(
            update(Conversation)
            .where(col(Conversation.id) == uninvited.id)
            .values(context={"plan": "free"})
        )
    for breakdown in ({"breakdown": "touchpoint"}, {"breakdown": "segment", "segment_key": "plan"}):
        with transaction(db) as s:
            got, _ = scores_by_day(s, query, now, **breakdown)  # type: ignore[arg-type]
        assert _comparable(got) == _comparable(_full(db, query, **breakdown))
    keys = {k.key for k in got.keys}
    assert "free" in keys


def test_fresh_answers_do_not_stamp_and_open_days_are_always_counted(db: Engine) -> None:
    now = _now()
    data = _seed(db, now)
    query = _query(now)
    with transaction(db) as s:
        stamps_before = s.scalar(select(func.count()).select_from(AnalyticsStamp))
        _, to_keep = scores_by_day(s, query, now)
    store_days(db, to_keep, now=now)
    data.add(now - timedelta(minutes=5), nps=3, comment="meh", label="neutral")
    with transaction(db) as s:
        # The fresh answer and its label stamp nothing: no turn pays for a shared row.
        assert s.scalar(select(func.count()).select_from(AnalyticsStamp)) == stamps_before
        got, more = scores_by_day(s, query, now)
    assert more == []
    assert _comparable(got) == _comparable(_full(db, query))


def test_bounds_off_local_midnight_are_counted_as_asked(db: Engine) -> None:
    now = _now()
    _seed(db, now)
    query = _query(now)
    assert query.since is not None
    odd = AnalyticsQuery(
        period="week", zone=ZONE, since=query.since + timedelta(hours=5), until=query.until
    )
    with transaction(db) as s:
        got, to_keep = scores_by_day(s, odd, now)
    assert to_keep == []
    assert _comparable(got) == _comparable(_full(db, odd))


def test_kept_days_are_replaced_and_forgotten(db: Engine) -> None:
    now = _now()
    _seed(db, now)
    with transaction(db) as s:
        _, to_keep = scores_by_day(s, _query(now), now)
    assert to_keep
    assert store_days(db, to_keep, now=now - timedelta(days=KEEP_DAYS + 1)) == len(to_keep)
    assert store_days(db, to_keep[:2], now=now) == 2  # a second reader's copy replaces it
    with transaction(db) as s:
        assert forget_days(s, now=now) == len(to_keep) - 2
    with transaction(db) as s:
        assert s.scalar(select(func.count()).select_from(AnalyticsDay)) == 2


@pytest.mark.parametrize(
    ("day", "period", "start"),
    [
        (date(2026, 11, 29), "day", date(2026, 11, 29)),
        (date(2026, 11, 29), "week", date(2026, 11, 23)),
        (date(2026, 11, 30), "week", date(2026, 11, 30)),
        (date(2026, 11, 29), "month", date(2026, 11, 1)),
    ],
)
def test_period_start(day: date, period: str, start: date) -> None:
    assert period_start(day, period) == start
