"""The analytics page and its CSV export: filters in the query string, the chart data the page
carries (checked against hand-computed figures), the tables under the charts, bad filters (400)
and the streamed export (404 when nothing matches). Support users and admins alike."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import App
from bot.desk_users import DeskAccount
from tests.fakes.analytics_data import Responses
from tests.web.desk.conftest import Desk

Z = 1.959963984540054
WEEK1 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
WEEK2 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
RANGE = "since=2026-03-02&until=2026-03-15&tz=UTC"


@pytest.fixture
def seeded(app: App) -> Responses:
    """Week 1 (telegram, flow delivery, plan pro): NPS 10×5, 8×3, 3×2 with CSAT 5 / 2, the
    detractors saying why; week 2 (slack, flow returns): NPS 9, 9, 0 — too few for a margin."""
    responses = Responses(app.db)
    for i, score in enumerate([10, 10, 10, 10, 10, 8, 8, 8, 3, 3]):
        detractor = score <= 6
        responses.add(
            WEEK1 + timedelta(hours=i),
            nps=score,
            csat=5 if score >= 8 else 2,
            comment="the delivery was late <script>" if detractor else "great service",
            label="negative" if detractor else "positive",
            flow="delivery",
            channel="telegram",
            context={"plan": "pro"},
        )
    for i, score in enumerate([9, 9, 0]):
        responses.add(WEEK2 + timedelta(hours=i), nps=score, flow="returns", channel="slack")
    return responses


def page_data(text: str) -> dict[str, Any]:
    """The chart data the page carries in its JSON block."""
    found = re.search(r'<script type="application/json" id="analytics-data">(.*?)</script>', text)
    assert found is not None, "no data block on the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def nps_of(data: dict[str, Any]) -> list[tuple[str, float | None, int, float | None]]:
    return [(p["start"], p["nps"]["score"], p["nps"]["n"], p["nps"]["moe"]) for p in data["series"]]


async def test_strangers_are_sent_to_sign_in(desk: Desk) -> None:
    for path in ("/desk/analytics", "/desk/analytics/export.csv"):
        answer = await desk.client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/desk/login?next=")


async def test_support_users_see_the_page_with_hand_computed_figures(
    as_support: Desk, seeded: Responses
) -> None:
    answer = await as_support.client.get(f"/desk/analytics?by=week&{RANGE}")
    assert answer.status_code == 200
    assert 'aria-current="page">Analytics' in answer.text
    data = page_data(answer.text)
    # Week 1: p = 5/10, d = 2/10: NPS 30, var = p + d − (p − d)² = 0.61, moe = 100·z·√(0.61/10).
    moe = round(100 * Z * math.sqrt(0.61 / 10), 2)
    assert moe == 48.41
    assert nps_of(data) == [("2026-03-02", 30.0, 10, moe), ("2026-03-09", 33.3, 3, None)]
    # CSAT: 8 of 10 satisfied: 80 %, moe = 100·z·√(0.8·0.2/10).
    csat = data["series"][0]["csat"]
    csat_moe = round(100 * Z * math.sqrt(0.8 * 0.2 / 10), 2)
    assert (csat["score"], csat["n"], csat["moe"]) == (80.0, 10, csat_moe)
    assert data["distribution"]["nps"]["counts"]["10"] == 5
    assert data["distribution"]["nps"]["promoters"] == 7
    assert data["distribution"]["nps"]["detractors"] == 3
    shares = data["sentiment"][0]["shares"]
    assert (shares["negative"], shares["positive"]) == (20.0, 80.0)
    # The tables under the charts say the same, margins and "(few)" included.
    assert "<td>30.0 ±48.4</td><td>10</td>" in answer.text
    assert '<td>33.3 <span class="few">(few)</span></td><td>3</td>' in answer.text
    # The charts are drawn by the vendored Chart.js and the page's own script.
    vendored = '<script src="/desk/static/vendor/chartjs/chart.umd.min.js" defer></script>'
    assert vendored in answer.text
    assert '<canvas id="chart-nps" data-chart="trend"' in answer.text
    assert 'href="/desk/flows"' not in answer.text  # support: no flow pages offered


async def test_filters_and_a_breakdown_change_the_figures(
    as_admin: Desk, seeded: Responses
) -> None:
    only = await as_admin.client.get(f"/desk/analytics?by=week&{RANGE}&flow=returns")
    assert nps_of(page_data(only.text)) == [
        ("2026-03-02", None, 0, None),
        ("2026-03-09", 33.3, 3, None),
    ]
    channel = await as_admin.client.get(f"/desk/analytics?by=week&{RANGE}&channel=telegram")
    assert [p[2] for p in nps_of(page_data(channel.text))] == [10, 0]
    segment = await as_admin.client.get(f"/desk/analytics?by=week&{RANGE}&segment=plan%3Dpro")
    assert [p[2] for p in nps_of(page_data(segment.text))] == [10, 0]
    broken = await as_admin.client.get(f"/desk/analytics?by=week&{RANGE}&breakdown=channel")
    data = page_data(broken.text)
    values = {v["value"]: [p["nps"]["n"] for p in v["series"]] for v in data["breakdown"]["values"]}
    assert values == {"telegram": [10, 0], "slack": [0, 3]}
    assert '<canvas id="chart-breakdown-nps" data-chart="breakdown"' in broken.text
    days = await as_admin.client.get(f"/desk/analytics?by=day&{RANGE}")
    assert len(page_data(days.text)["series"]) == 14


async def test_buckets_follow_the_chosen_time_zone(as_admin: Desk, app: App) -> None:
    # Sunday 23:30 UTC is Monday 00:30 in Berlin: the next week there.
    Responses(app.db).add(datetime(2026, 3, 8, 23, 30, tzinfo=UTC), nps=10)
    utc = await as_admin.client.get("/desk/analytics?by=week&since=2026-03-02&until=2026-03-15")
    berlin = await as_admin.client.get(
        "/desk/analytics?by=week&since=2026-03-02&until=2026-03-15&tz=Europe/Berlin"
    )
    assert [p[2] for p in nps_of(page_data(utc.text))] == [1, 0]
    assert [p[2] for p in nps_of(page_data(berlin.text))] == [0, 1]
    assert 'name="tz" value="Europe/Berlin"' in berlin.text


async def test_without_a_range_the_page_shows_the_last_twelve_weeks(
    as_admin: Desk, seeded: Responses
) -> None:
    today = as_admin.clock().date()
    answer = await as_admin.client.get("/desk/analytics")
    assert answer.status_code == 200
    series = page_data(answer.text)["series"]
    assert len(series) == 12
    assert series[-1]["start"] == (today - timedelta(days=today.weekday())).isoformat()
    assert f'name="until" value="{today.isoformat()}"' in answer.text


async def test_filter_values_are_shown_as_text(as_admin: Desk, seeded: Responses) -> None:
    answer = await as_admin.client.get(f"/desk/analytics?{RANGE}&flow=%3Cb%3Ex%3C/b%3E")
    assert answer.status_code == 200
    assert 'name="flow" value="&lt;b&gt;x&lt;/b&gt;"' in answer.text
    assert "<b>x</b>" not in answer.text
    # Data in the JSON block cannot close it: "<" is written as \u003c.
    block = re.search(r'id="analytics-data">(.*?)</script>', answer.text)
    assert block is not None and "<" not in block.group(1)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("since=2026-02-30", "since: expected a date as YYYY-MM-DD"),
        ("since=2026-03-10&until=2026-03-01", "the start 2026-03-10 is after the end 2026-03-01"),
        ("tz=Mars/Olympus", "unknown time zone"),
        ("by=year", "unknown period"),
        ("segment=plan", "segment: expected KEY=VALUE"),
        ("breakdown=colour", "unknown breakdown"),
        ("flow=" + "x" * 201, "Filter flow is longer than 200 characters"),
    ],
)
@pytest.mark.parametrize("path", ["/desk/analytics", "/desk/analytics/export.csv"])
async def test_impossible_filters_are_400(
    as_support: Desk, seeded: Responses, path: str, query: str, says: str
) -> None:
    answer = await as_support.client.get(f"{path}?{query}")
    assert answer.status_code == 400
    assert says in answer.text.replace("&#39;", "'")
    assert answer.headers["content-type"].startswith("text/html")


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_export_streams_the_filtered_responses_as_csv(
    as_support: Desk, seeded: Responses
) -> None:
    answer = await as_support.client.get(f"/desk/analytics/export.csv?{RANGE}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="responses-2026-03-02-to-2026-03-15.csv"'
    )
    assert "content-length" not in answer.headers  # streamed, not built whole first
    assert answer.headers["x-total-responses"] == "13"
    rows = rows_of(answer.text)
    assert len(rows) == 13
    assert list(rows[0])[:3] == ["response_id", "started_at", "completed_at"]
    assert [r["nps"] for r in rows] == ["10"] * 5 + ["8"] * 3 + ["3"] * 2 + ["9", "9", "0"]
    assert rows[8]["why"] == "the delivery was late <script>"
    assert rows[8]["why_sentiment"] == "negative"
    returns = await as_support.client.get(f"/desk/analytics/export.csv?{RANGE}&flow=returns")
    assert [r["flow_id"] for r in rows_of(returns.text)] == ["returns"] * 3
    pro = await as_support.client.get(f"/desk/analytics/export.csv?{RANGE}&segment=plan%3Dpro")
    assert [json.loads(r["context"]) for r in rows_of(pro.text)] == [{"plan": "pro"}] * 10
    assert "x-total-responses" not in pro.headers


async def test_a_large_export_arrives_whole(as_admin: Desk, app: App) -> None:
    responses = Responses(app.db)
    for i in range(450):  # more than two chunks of the writer and of the reader
        responses.add(WEEK1 + timedelta(minutes=i), nps=i % 11, comment=f"comment {i}")
    async with as_admin.client.stream("GET", f"/desk/analytics/export.csv?{RANGE}") as answer:
        assert answer.status_code == 200
        text = "".join([piece async for piece in answer.aiter_text()])
    rows = rows_of(text)
    assert len(rows) == 450
    assert rows[-1]["why"] == "comment 449"


@pytest.mark.parametrize(
    "query",
    ["since=2020-01-01&until=2020-01-31", f"{RANGE}&flow=nothing", f"{RANGE}&segment=plan%3Dfree"],
)
async def test_an_empty_export_is_a_404_that_says_so(
    as_admin: Desk, seeded: Responses, query: str
) -> None:
    answer = await as_admin.client.get(f"/desk/analytics/export.csv?{query}")
    assert answer.status_code == 404
    assert "No survey responses match these filters: there is nothing to export." in answer.text
    assert answer.headers["content-type"].startswith("text/html")


async def test_the_page_links_its_export_with_the_same_filters(
    as_admin: Desk, admin: DeskAccount, seeded: Responses
) -> None:
    answer = await as_admin.client.get(f"/desk/analytics?{RANGE}&channel=slack")
    link = re.search(r'href="(/desk/analytics/export\.csv\?[^"]*)"', answer.text)
    assert link is not None
    exported = await as_admin.client.get(link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200
    assert [r["channel"] for r in rows_of(exported.text)] == ["slack"] * 3
