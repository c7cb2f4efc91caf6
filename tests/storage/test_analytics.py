"""The analytics page's aggregate queries on SQLite and PostgreSQL: buckets computed by the
database match local days in any time zone (daylight saving, half-hour offsets), the shown
sentiment label (a correction wins), detractors' and promoters' comments, filters and
breakdowns."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.trends import Period, bucket_start, local_day
from storage.analytics import (
    AnalyticsQuery,
    breakdown_counts,
    label_counts,
    nps_comments,
    offset_changes,
    score_counts,
)
from storage.database import transaction
from storage.tables import Answer, SentimentScore
from tests.fakes.analytics_data import Responses

# Moments around the edges of local days: daylight-saving changes in Berlin, New York and Lord
# Howe (a half-hour change), India's +5:30 and Nepal's +5:45 midnights, a Sunday late in UTC,
# month and year ends.
TRICKY = [
    datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC),  # Berlin: 01:59:59 CET
    datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC),  # Berlin: 03:00 CEST
    datetime(2026, 3, 8, 6, 59, tzinfo=UTC),  # New York: 01:59 EST
    datetime(2026, 3, 8, 7, 1, tzinfo=UTC),  # New York: 03:01 EDT
    datetime(2026, 10, 24, 22, 30, tzinfo=UTC),  # Berlin: 00:30 on the 25th, CEST
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # Berlin: 02:30 CET, after the change
    datetime(2026, 11, 1, 3, 59, tzinfo=UTC),  # New York: 23:59 EDT on Oct 31
    datetime(2026, 11, 1, 4, 1, tzinfo=UTC),  # New York: 00:01 on Nov 1
    datetime(2026, 11, 29, 23, 30, tzinfo=UTC),  # Sunday in UTC, Monday in Berlin
    datetime(2026, 11, 30, 18, 29, tzinfo=UTC),  # Kolkata: 23:59; Kathmandu: Dec 1, 00:14
    datetime(2026, 11, 30, 18, 31, tzinfo=UTC),  # Kolkata: Dec 1, 00:01
    datetime(2026, 4, 4, 14, 45, tzinfo=UTC),  # Lord Howe: 01:45 on the 5th, +11 until 15:00
    datetime(2026, 4, 4, 15, 10, tzinfo=UTC),  # Lord Howe: 01:40 again, now +10:30
    datetime(2026, 12, 31, 23, 0, 0, 500000, tzinfo=UTC),  # New Year in Berlin
]
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
]


def _expected(moments: list[datetime], zone: str, period: Period) -> Counter[tuple[date, int]]:
    tz = ZoneInfo(zone)
    return Counter((bucket_start(local_day(m, tz), period), i % 11) for i, m in enumerate(moments))


def test_buckets_are_local_days_weeks_and_months_in_every_zone(db: Engine) -> None:
    data = Responses(db)
    for i, moment in enumerate(TRICKY):
        data.add(moment, nps=i % 11)
    with transaction(db) as s:
        for zone in ZONES:
            for period in Period:
                rows = score_counts(s, AnalyticsQuery(period=period.value, zone=zone))
                got = Counter({(r.bucket, r.value): r.n for r in rows})
                assert got == _expected(TRICKY, zone, period), (zone, period)


def test_bounds_are_instants_and_include_the_start(db: Engine) -> None:
    data = Responses(db)
    start = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    data.add(start - timedelta(microseconds=1), nps=1)
    data.add(start, nps=2)
    data.add(start + timedelta(hours=1), nps=3)
    query = AnalyticsQuery(
        period="day", zone="Europe/Berlin", since=start, until=start + timedelta(hours=1)
    )
    with transaction(db) as s:
        assert [(r.bucket, r.value, r.n) for r in score_counts(s, query)] == [
            (date(2026, 3, 29), 2, 1)
        ]


def test_offset_changes_are_found_to_the_second() -> None:
    changes = offset_changes(
        ZoneInfo("Europe/Berlin"), datetime(2026, 1, 1), datetime(2026, 12, 31, tzinfo=UTC)
    )
    assert changes == [
        (datetime(2026, 1, 1), 3600),
        (datetime(2026, 3, 29, 1), 7200),
        (datetime(2026, 10, 25, 1), 3600),
    ]
    assert offset_changes(ZoneInfo("UTC"), datetime(2026, 1, 1), datetime(2027, 1, 1)) == [
        (datetime(2026, 1, 1), 0)
    ]


def test_skipped_late_and_text_answers_are_not_scores(db: Engine) -> None:
    data = Responses(db)
    at = datetime(2026, 11, 2, 12, tzinfo=UTC)
    data.add(at, nps=9, ces=3, csat=4, ces_scale=(1, 5), comment="fine")
    data.add(at, nps=2, csat=5, skipped=("nps",))
    with transaction(db) as s:
        s.add(
            Answer(
                conversation_id=1,
                customer_id=1,
                channel="telegram",
                flow_id="delivery",
                flow_version=1,
                question_id="nps",
                question_type="nps",
                value_int=0,
                late=True,
                answered_at=at,
            )
        )
    with transaction(db) as s:
        rows = score_counts(s, AnalyticsQuery(period="month"))
    got = {(r.question_type, r.value, r.scale_min, r.scale_max): r.n for r in rows}
    assert got == {
        ("nps", 9, 0, 10): 1,
        ("ces", 3, 1, 5): 1,
        ("csat", 4, 1, 5): 1,
        ("csat", 5, 1, 5): 1,
    }
    assert {r.bucket for r in rows} == {date(2026, 11, 1)}


def test_the_shown_label_is_the_newest_correction_else_the_newest_model_label(
    db: Engine,
) -> None:
    data = Responses(db)
    monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
    data.add(monday, nps=9, comment="great", label="positive")
    data.add(monday, nps=3, comment="late", label="positive", corrected="negative")
    data.add(monday, nps=8, comment="hm", label="neutral")
    data.add(monday, nps=7, comment="no label yet")
    data.add(monday + timedelta(days=7), comment="skipped", label="negative", skipped=("why",))
    rescored = data.text_answers[2]
    with transaction(db) as s:  # the model scored "hm" again: its newest label is shown
        s.add(
            SentimentScore(
                answer_id=rescored,
                label="positive",
                confidence=0.8,
                model_id="tests/model",
                model_version="v2",
            )
        )
    with transaction(db) as s:
        rows = label_counts(s, AnalyticsQuery(period="week"))
    assert {(r.bucket, r.label): r.n for r in rows} == {
        (date(2026, 11, 2), "positive"): 2,
        (date(2026, 11, 2), "negative"): 1,
        (date(2026, 11, 2), "unlabelled"): 1,
    }


def test_comments_of_detractors_and_promoters_newest_first(db: Engine) -> None:
    data = Responses(db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    data.add(at, nps=2, comment="first detractor")
    data.add(at + timedelta(hours=1), nps=6, comment="second detractor")
    data.add(at + timedelta(hours=2), nps=7, comment="a passive")
    data.add(at + timedelta(hours=3), nps=9, comment="a promoter")
    data.add(at + timedelta(hours=4), nps=10, comment="")
    data.add(at + timedelta(hours=5), comment="no score")
    data.add(at + timedelta(hours=6), nps=1, comment="skipped score", skipped=("nps",))
    with transaction(db) as s:
        query = AnalyticsQuery()
        assert nps_comments(s, query, group="detractors") == [
            "second detractor",
            "first detractor",
        ]
        assert nps_comments(s, query, group="detractors", limit=1) == ["second detractor"]
        assert nps_comments(s, query, group="promoters") == ["a promoter"]
        later = AnalyticsQuery(since=at + timedelta(minutes=30))
        assert nps_comments(s, later, group="detractors") == ["second detractor"]


def test_filters_flow_channel_touchpoint_and_segment(db: Engine) -> None:
    data = Responses(db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    data.add(at, nps=10, flow="delivery", channel="telegram", context={"plan": "pro"})
    data.add(at, nps=9, flow="delivery", channel="slack", touchpoint="checkout")
    data.add(at, nps=3, flow="support", channel="slack", context={"plan": "free", "tier": 3})
    data.add(at, nps=5, flow="support", touchpoint="delivery", context={"plan": "pro"})

    def values(**where: object) -> list[int]:
        with transaction(db) as s:
            rows = score_counts(s, AnalyticsQuery(**where))  # type: ignore[arg-type]
        return sorted(v for r in rows for v in [r.value] * r.n)

    assert values() == [3, 5, 9, 10]
    assert values(flow="support") == [3, 5]
    assert values(channel="slack") == [3, 9]
    assert values(touchpoint="checkout") == [9]
    assert values(segment=("plan", "pro")) == [5, 10]
    assert values(segment=("tier", "3")) == [3]  # a number in the context matches its text
    assert values(segment=("plan", "enterprise")) == []
    assert values(flow="support", segment=("plan", "pro")) == [5]


def test_breakdown_counts_overall_the_top_values_and_theirs(db: Engine) -> None:
    data = Responses(db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for _ in range(5):
        data.add(at, nps=10, ces=7, touchpoint="delivery", context={"plan": "pro"})
    for i in range(2):
        data.add(at, nps=i, touchpoint="checkout", context={"plan": "free"})
    data.add(at + timedelta(days=8), nps=4)  # not invited, no plan
    with transaction(db) as s:
        query = AnalyticsQuery(period="week")
        found = breakdown_counts(s, query, breakdown="touchpoint")
        assert [(t.key, t.n) for t in found.keys] == [("delivery", 10), ("checkout", 2), (None, 1)]
        assert sorted((r.bucket, r.question_type, r.value, r.n) for r in found.overall) == [
            (date(2026, 11, 2), "ces", 7, 5),
            (date(2026, 11, 2), "nps", 0, 1),
            (date(2026, 11, 2), "nps", 1, 1),
            (date(2026, 11, 2), "nps", 10, 5),
            (date(2026, 11, 9), "nps", 4, 1),
        ]
        assert sorted((r.key or "", r.bucket, r.value, r.n) for r in found.by_key) == [
            ("", date(2026, 11, 9), 4, 1),
            ("checkout", date(2026, 11, 2), 0, 1),
            ("checkout", date(2026, 11, 2), 1, 1),
            ("delivery", date(2026, 11, 2), 7, 5),
            ("delivery", date(2026, 11, 2), 10, 5),
        ]
        two = breakdown_counts(s, query, breakdown="touchpoint", limit=2)
        assert [t.key for t in two.keys] == ["delivery", "checkout"]
        assert {r.key for r in two.by_key} == {"delivery", "checkout"}
        assert sum(r.n for r in two.overall) == 13  # the values left out still count overall
        plans = breakdown_counts(s, query, breakdown="segment", segment_key="plan")
        assert [(t.key, t.n) for t in plans.keys] == [("pro", 10), ("free", 2), (None, 1)]
        flows = breakdown_counts(s, query, breakdown="flow")
        assert [(t.key, t.n) for t in flows.keys] == [("delivery", 13)]
        pro = breakdown_counts(
            s, AnalyticsQuery(segment=("plan", "pro")), breakdown="channel", limit=8
        )
        assert [(t.key, t.n) for t in pro.keys] == [("telegram", 10)]
        with pytest.raises(ValueError, match="breakdown"):
            breakdown_counts(s, query, breakdown="segment")
