"""The analytics page's data on SQLite and PostgreSQL: the trend from database counts equals
`build_trend` over the same answers, distributions, sentiment share (a correction wins), top
terms without stop words, segment filter, breakdowns, the funnel, response times, and clear
errors for filters that cannot be answered."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.analytics import AnalyticsFilter, build_analytics, parse_filter
from bot.app import App
from bot.comment_terms import stop_words, top_terms
from bot.errors import AnalyticsFilterError
from bot.trends import Period, build_trend, utc_range
from storage.database import transaction
from storage.reports import score_answers
from storage.tables import Invitation, InvitationStatus, ReviewItem
from tests.fakes.analytics_data import Responses

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
SUNDAY_LATE = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # Monday 00:30 in Berlin


def _mixed(data: Responses) -> None:
    """Thirty surveys over two months with every score, two flows, both channels."""
    for i in range(30):
        at = datetime(2026, 10, 1, 7, tzinfo=UTC) + timedelta(days=2 * i, hours=5 * i)
        data.add(
            at,
            nps=(i * 7) % 11,
            ces=1 + (i * 3) % 5 if i % 4 else 1 + i % 7,
            ces_scale=(1, 5) if i % 4 else (1, 7),
            csat=1 + (i * 2) % 5,
            flow="delivery" if i % 3 else "support",
            channel="slack" if i % 2 else "telegram",
        )
    data.add(SUNDAY_LATE, nps=10, ces=7, csat=5)


@pytest.mark.parametrize(
    ("by", "zone", "since", "until"),
    [
        (Period.WEEK, "Europe/Berlin", None, None),
        (Period.DAY, "America/New_York", date(2026, 10, 20), date(2026, 11, 12)),
        (Period.MONTH, "Asia/Kolkata", date(2026, 10, 5), None),
        (Period.WEEK, "UTC", None, date(2026, 11, 29)),
    ],
)
def test_the_trend_equals_build_trend_over_the_same_answers(
    any_db_app: App, by: Period, zone: str, since: date | None, until: date | None
) -> None:
    _mixed(Responses(any_db_app.db))
    filt = AnalyticsFilter(by=by, zone=zone, since=since, until=until)
    page = build_analytics(any_db_app.db, filt, now=NOW, min_n=3)
    start, end = utc_range(since, until, zone)
    with transaction(any_db_app.db) as s:
        rows = score_answers(s, since=start, until=end)
    expected = build_trend(rows, by=by, zone=zone, since=since, until=until, min_n=3)
    assert page.trend.to_dict() == expected.to_dict()
    assert len(page.trend.series) > 1


def test_a_late_sunday_answer_is_in_next_week_in_berlin(any_db_app: App) -> None:
    Responses(any_db_app.db).add(SUNDAY_LATE, nps=10)
    utc = build_analytics(any_db_app.db, AnalyticsFilter(by=Period.WEEK), now=NOW)
    berlin = build_analytics(
        any_db_app.db, AnalyticsFilter(by=Period.WEEK, zone="Europe/Berlin"), now=NOW
    )
    assert [p.start for p in utc.trend.series] == [date(2026, 11, 23)]
    assert [p.start for p in berlin.trend.series] == [date(2026, 11, 30)]
    assert berlin.to_dict()["series"][0]["nps"] == {
        "score": 100.0,
        "n": 1,
        "moe": None,
        "promoters": 1,
        "passives": 0,
        "detractors": 0,
    }


def test_distributions(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for nps, ces, csat in [(0, 1, 1), (6, 4, 3), (7, 7, 4), (8, 7, 5), (9, 2, 5), (10, 2, 5)]:
        data.add(at, nps=nps, ces=ces, csat=csat)
    data.add(at, ces=3, ces_scale=(1, 5))  # 3 of 1–5 is 4 of 1–7
    dist = build_analytics(any_db_app.db, AnalyticsFilter(), now=NOW).distribution
    assert dist.nps == (1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1)
    assert (dist.promoters, dist.passives, dist.detractors) == (2, 2, 2)
    assert dist.ces == (1, 2, 0, 2, 0, 0, 2)
    assert dist.csat == (1, 0, 1, 1, 3)
    assert dist.to_dict()["nps"]["counts"]["10"] == 1


def test_sentiment_share_over_time_with_a_correction_winning(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    week1 = datetime(2026, 11, 2, 9, tzinfo=UTC)
    data.add(week1, nps=9, comment="great", label="positive")
    data.add(week1, nps=2, comment="late", label="positive", corrected="negative")
    data.add(week1, nps=7, comment="ok", label="neutral")
    data.add(week1, nps=8, comment="not scored yet")
    data.add(week1 + timedelta(days=14), nps=3, comment="broken", label="negative")
    # A text in a language without a model counts as its own label.
    data.add(week1 + timedelta(days=15), nps=9, comment="todo bien", label="unclassified")
    page = build_analytics(any_db_app.db, AnalyticsFilter(by=Period.WEEK), now=NOW)
    points = [p.to_dict() for p in page.sentiment]
    assert [p["start"] for p in points] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert points[0]["counts"] == {
        "negative": 1,
        "neutral": 1,
        "positive": 1,
        "unclassified": 0,
        "unlabelled": 1,
    }
    assert points[0]["shares"] == {
        "negative": 25.0,
        "neutral": 25.0,
        "positive": 25.0,
        "unclassified": 0.0,
        "unlabelled": 25.0,
    }
    assert points[1] == {
        "start": "2026-11-09",
        "n": 0,
        "counts": dict.fromkeys(
            ("negative", "neutral", "positive", "unclassified", "unlabelled"), 0
        ),
        "shares": dict.fromkeys(
            ("negative", "neutral", "positive", "unclassified", "unlabelled"), None
        ),
    }
    assert points[2]["counts"]["negative"] == points[2]["counts"]["unclassified"] == 1
    assert points[2]["shares"]["unclassified"] == 50.0


def test_top_terms_of_detractors_and_promoters_without_stop_words(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for text in [
        "The courier was late and the parcel was damaged",
        "Courier late again, parcel damaged!",
        "El repartidor llegó muy tarde",
        "Der Kurier war leider zu spät",
    ]:
        data.add(at, nps=2, comment=text)
    data.add(at, nps=10, comment="Friendly support, quick refund")
    data.add(at, nps=9, comment="So friendly and quick")
    data.add(at, nps=7, comment="passives are not counted")
    terms = build_analytics(any_db_app.db, AnalyticsFilter(), now=NOW).terms
    detractors = terms["detractors"]
    assert detractors.comments == 4
    assert [(t.term, t.comments) for t in detractors.words[:4]] == [
        ("courier", 2),
        ("damaged", 2),
        ("late", 2),
        ("parcel", 2),
    ]
    assert ("courier late", 2) in [(t.term, t.comments) for t in detractors.phrases]
    found = {t.term for t in detractors.words} | {
        w for t in detractors.phrases for w in t.term.split()
    }
    for stop in ("the", "was", "and", "el", "muy", "der", "war", "zu", "again"):
        assert stop not in found
    assert {"repartidor", "tarde", "kurier", "spät"} <= found
    promoters = terms["promoters"]
    assert [(t.term, t.comments) for t in promoters.words[:2]] == [("friendly", 2), ("quick", 2)]
    assert "passives" not in {t.term for t in promoters.words}


def test_top_terms_count_a_term_once_per_comment_and_weigh_repeats() -> None:
    terms = top_terms(["refund refund refund", "Refund please", "refund refund refund", "the"])
    assert terms.comments == 4
    assert [(t.term, t.comments) for t in terms.words] == [("refund", 3)]
    assert [(t.term, t.comments) for t in terms.phrases] == [("refund refund", 2)]
    assert top_terms(["the and of", ""]).words == ()
    assert {"the", "und", "der", "el", "los"} <= stop_words()


def test_segment_filter_and_breakdowns(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for plan, nps, touchpoint in [
        ("pro", 10, "delivery"),
        ("pro", 9, "delivery"),
        ("pro", 3, "checkout"),
        ("free", 2, None),
        ("free", 8, "delivery"),
    ]:
        data.add(at, nps=nps, context={"plan": plan}, touchpoint=touchpoint)
    data.add(at, nps=0)
    pro = build_analytics(any_db_app.db, AnalyticsFilter(segment=("plan", "pro")), now=NOW)
    assert pro.trend.series[0].nps.n == 3
    assert pro.distribution.nps[3] == 1 and pro.distribution.detractors == 1

    by_plan = build_analytics(
        any_db_app.db, AnalyticsFilter(breakdown="segment:plan", by=Period.MONTH), now=NOW
    )
    assert by_plan.breakdown is not None
    assert [(s.value, s.n) for s in by_plan.breakdown.series] == [
        ("pro", 3),
        ("free", 2),
        ("(none)", 1),
    ]
    assert [s.trend.series[0].nps.score for s in by_plan.breakdown.series] == [33.3, -50.0, -100.0]
    assert by_plan.breakdown.other_n == 0

    by_touchpoint = build_analytics(
        any_db_app.db,
        AnalyticsFilter(breakdown="touchpoint", segment=("plan", "pro")),
        now=NOW,
    )
    assert by_touchpoint.breakdown is not None
    assert [(s.value, s.n) for s in by_touchpoint.breakdown.series] == [
        ("delivery", 2),
        ("checkout", 1),
    ]
    as_json = by_touchpoint.to_dict()["breakdown"]
    assert as_json["name"] == "touchpoint"
    assert as_json["values"][0]["series"][0]["nps"]["n"] == 2


def test_a_breakdown_keeps_the_eight_values_with_most_answers(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for i in range(10):
        for _ in range(i + 1):
            data.add(at, csat=5, flow=f"flow{i:02d}")
    page = build_analytics(any_db_app.db, AnalyticsFilter(breakdown="flow"), now=NOW)
    assert page.breakdown is not None
    assert [s.value for s in page.breakdown.series] == [f"flow{i:02d}" for i in range(9, 1, -1)]
    assert page.breakdown.other_n == 1 + 2


def test_the_funnel_follows_flow_channel_and_touchpoint(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    data.add(at, nps=9, touchpoint="delivery")
    data.add(at, nps=3, touchpoint="checkout", channel="slack")
    with transaction(any_db_app.db) as s:
        s.add(
            Invitation(
                source="tests",
                interaction_id="withheld-1",
                customer_id=1,
                channel="telegram",
                user_id="analytics-1",
                touchpoint="delivery",
                flow_id="delivery",
                status=InvitationStatus.WITHHELD,
                reason="cooldown",
            )
        )
    everything = build_analytics(any_db_app.db, AnalyticsFilter(), now=NOW).funnel.overall
    assert (everything.invited, everything.withheld, everything.completed) == (3, 1, 2)
    delivery = build_analytics(
        any_db_app.db, AnalyticsFilter(touchpoint="delivery"), now=NOW
    ).funnel
    assert delivery.overall.to_dict() == {
        "invited": 2,
        "scheduled": 0,
        "withheld": 1,
        "withheld_by_reason": {"cooldown": 1},
        "sent": 1,
        "delivered": 1,
        "started": 1,
        "completed": 1,
        "response_rate": 100.0,
    }
    slack = build_analytics(any_db_app.db, AnalyticsFilter(channel="slack"), now=NOW).funnel
    assert (slack.overall.invited, slack.overall.completed) == (1, 1)


def test_response_times_of_the_last_7_and_30_days(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    ids = [data.add(NOW - timedelta(days=d), nps=1) for d in (1, 2, 3, 20)]
    with transaction(any_db_app.db) as s:
        for conversation_id, days, ack_minutes, reply_minutes in zip(
            ids, (1, 2, 3, 20), (10, 30, 50, 600), (None, 60, 120, 900), strict=True
        ):
            created = NOW - timedelta(days=days)
            s.add(
                ReviewItem(
                    conversation_id=conversation_id,
                    customer_id=conversation_id,
                    status="acknowledged",
                    created_at=created,
                    first_ack_at=created + timedelta(minutes=ack_minutes),
                    first_reply_at=created + timedelta(minutes=reply_minutes)
                    if reply_minutes
                    else None,
                )
            )
    times = build_analytics(any_db_app.db, AnalyticsFilter(), now=NOW).response_times
    week, month = (t.to_dict() for t in times)
    assert week == {
        "days": 7,
        "acknowledged": {"n": 3, "p50_s": 1800.0, "p90_s": 3000.0},
        "replied": {"n": 2, "p50_s": 3600.0, "p90_s": 7200.0},
    }
    assert month["acknowledged"] == {"n": 4, "p50_s": 1800.0, "p90_s": 36000.0}
    assert month["replied"]["n"] == 3


def test_the_page_is_plain_json(any_db_app: App) -> None:
    data = Responses(any_db_app.db)
    data.add(SUNDAY_LATE, nps=4, ces=2, csat=1, comment="slow courier", label="negative")
    page = build_analytics(
        any_db_app.db,
        AnalyticsFilter(by=Period.DAY, zone="Europe/Berlin", breakdown="channel"),
        now=NOW,
    )
    decoded = json.loads(json.dumps(page.to_dict()))
    assert decoded["by"] == "day" and decoded["time_zone"] == "Europe/Berlin"
    assert decoded["series"][0]["start"] == "2026-11-30"
    assert decoded["filter"]["breakdown"] == "channel"
    assert decoded["terms"]["detractors"]["words"][0] == {"term": "courier", "comments": 1}
    assert decoded["sentiment"][0]["counts"]["negative"] == 1


def test_an_empty_range_is_an_empty_page(any_db_app: App) -> None:
    page = build_analytics(any_db_app.db, AnalyticsFilter(), now=NOW)
    assert page.trend.series == [] and page.sentiment == []
    assert page.distribution.nps == (0,) * 11
    assert page.terms["detractors"].words == ()
    ranged = build_analytics(
        any_db_app.db,
        AnalyticsFilter(by=Period.DAY, since=date(2026, 11, 1), until=date(2026, 11, 3)),
        now=NOW,
    )
    assert [p.nps.n for p in ranged.trend.series] == [0, 0, 0]


@pytest.mark.parametrize(
    ("filt", "message"),
    [
        (AnalyticsFilter(since=date(2026, 11, 5), until=date(2026, 11, 4)), "is after the end"),
        (AnalyticsFilter(zone="Mars/Olympus_Mons"), "unknown time zone 'Mars/Olympus_Mons'"),
        (AnalyticsFilter(zone="../etc/passwd"), "unknown time zone"),
        (AnalyticsFilter(breakdown="colour"), "unknown breakdown 'colour'"),
        (AnalyticsFilter(breakdown="segment:"), "unknown breakdown"),
        (AnalyticsFilter(segment=("plan tier", "pro")), "segment key 'plan tier'"),
        (AnalyticsFilter(segment=("plan", "")), "segment plan: a value"),
    ],
)
def test_filters_that_cannot_be_answered(
    any_db_app: App, filt: AnalyticsFilter, message: str
) -> None:
    with pytest.raises(AnalyticsFilterError, match=message):
        build_analytics(any_db_app.db, filt, now=NOW)


def test_parse_filter_from_a_query_string() -> None:
    filt = parse_filter(
        {
            "by": "month",
            "since": "2026-01-01",
            "until": "",
            "flow": "delivery",
            "segment": "plan=pro",
            "breakdown": "segment:country",
        },
        zone="Europe/Berlin",
    )
    assert filt == AnalyticsFilter(
        by=Period.MONTH,
        since=date(2026, 1, 1),
        zone="Europe/Berlin",
        flow="delivery",
        segment=("plan", "pro"),
        breakdown="segment:country",
    )
    assert parse_filter({}) == AnalyticsFilter()
    for params, message in [
        ({"by": "year"}, "unknown period 'year'"),
        ({"since": "yesterday"}, "since: expected a date as YYYY-MM-DD"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "is after the end"),
        ({"segment": "plan"}, "segment: expected KEY=VALUE"),
        ({"tz": "Nowhere"}, "unknown time zone"),
    ]:
        with pytest.raises(AnalyticsFilterError, match=message):
            parse_filter(params)
