"""The review queue page: order, filters with counts, pagination, response times, items past
the response target, and customer text escaped."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.app import App
from storage.database import transaction
from storage.tables import ReviewItem
from tests.fakes.desk_seed import answer_survey, flag
from tests.web.desk.conftest import PAGE_SIZE, Desk

XSS = "<img src=x onerror=alert(1)>"


def ids_on(page: str) -> list[int]:
    """The review ids listed on a queue page, in order."""
    return [int(n) for n in re.findall(r'<td data-label="#"><a href="/desk/items/(\d+)"', page)]


async def queue(desk: Desk, query: str = "") -> str:
    answer = await desk.client.get(f"/desk/queue{'?' + query if query else ''}")
    assert answer.status_code == 200, answer.text
    return answer.text


async def acknowledge(desk: Desk, review_id: int) -> None:
    page = await desk.client.get(f"/desk/items/{review_id}")
    version = re.search(r'name="version" value="([^"]+)"', page.text)
    assert version is not None
    answer = await desk.post(
        f"/desk/items/{review_id}/acknowledge",
        {"version": version.group(1)},
        page=f"/desk/items/{review_id}",
    )
    assert answer.status_code == 303


def age(app: App, review_id: int, hours: float) -> None:
    """Make an item `hours` older (its flag time moves back)."""
    with transaction(app.db) as s:
        item = s.get(ReviewItem, review_id)
        assert item is not None
        item.created_at -= timedelta(hours=hours)
        s.add(item)


async def test_flagged_replies_are_listed_newest_first_and_promoters_not_at_all(
    as_support: Desk,
) -> None:
    first = await flag(as_support.app, "41", name="Ann", comment="slow answers")
    await answer_survey(as_support.app, "43", name="Cy", score=10, comment="great")
    second = await flag(as_support.app, "42", name="Bo", comment="rude agent")
    age(as_support.app, first, 1)
    page = await queue(as_support)
    assert ids_on(page) == [second, first]
    assert "Bo (42)" in page and "rude agent" in page and "NPS 2 (detractor)" in page
    assert "Cy (43)" not in page
    assert "2 items" in page
    oldest = await queue(as_support, "order=oldest_open")
    assert ids_on(oldest) == [first, second]


async def test_status_tabs_count_and_filter(as_support: Desk) -> None:
    one = await flag(as_support.app, "41")
    two = await flag(as_support.app, "42")
    await acknowledge(as_support, one)
    page = await queue(as_support)  # unresolved by default: open and acknowledged
    assert ids_on(page) == [two, one]
    tabs = dict(re.findall(r'>(\w+) <span class="count">(\d+)</span>', page))
    assert tabs == {
        "unresolved": "2",
        "open": "1",
        "acknowledged": "1",
        "resolved": "0",
        "all": "2",
    }
    assert ids_on(await queue(as_support, "status=open")) == [two]
    assert ids_on(await queue(as_support, "status=acknowledged")) == [one]
    assert ids_on(await queue(as_support, "status=resolved")) == []
    assert "Nothing here under these filters." in await queue(as_support, "status=resolved")


async def test_filters_by_sentiment_confidence_channel_reason_and_assignee(
    as_support: Desk,
) -> None:
    app = as_support.app
    sure = await flag(app, "41", comment="awful", label="negative", confidence=0.95)
    unsure = await flag(app, "42", comment="hmm ok", label="neutral", confidence=0.4)
    slack = await flag(app, "U0ANN0001", channel="slack", comment="I will cancel", label=None)
    assert ids_on(await queue(as_support, "sentiment=negative")) == [sure]
    assert ids_on(await queue(as_support, "sentiment=neutral")) == [unsure]
    assert ids_on(await queue(as_support, "sentiment=unlabelled")) == [slack]
    assert ids_on(await queue(as_support, "low_confidence=1")) == [unsure]
    assert ids_on(await queue(as_support, "channel=slack")) == [slack]
    assert ids_on(await queue(as_support, "reason=keyword")) == [slack]
    assert ids_on(await queue(as_support, "assignee=none")) == [slack, unsure, sure]
    assert ids_on(await queue(as_support, "assignee=me")) == []
    page = await queue(as_support, "channel=slack")
    # Each select offers its values with their counts under the other filters.
    assert '<option value="telegram">telegram (2)</option>' in page
    assert '<option value="slack" selected>slack (1)</option>' in page
    assert 'value="1" checked' not in page


async def test_filter_by_date(as_support: Desk) -> None:
    old = await flag(as_support.app, "41")
    new = await flag(as_support.app, "42")
    age(as_support.app, old, 72)
    today = as_support.clock().date()
    assert ids_on(await queue(as_support, f"since={today}")) == [new]
    before = today - timedelta(days=2)
    assert ids_on(await queue(as_support, f"until={before}")) == [old]


async def test_pages_of_page_size_items(as_support: Desk) -> None:
    size = PAGE_SIZE
    ids = [await flag(as_support.app, str(100 + n)) for n in range(size + 1)]
    first = await queue(as_support)
    assert ids_on(first) == list(reversed(ids))[:size]
    assert "Page 1 of 2" in first
    assert 'href="/desk/queue?status=unresolved&amp;page=2"' in first
    second = await queue(as_support, "page=2")
    assert ids_on(second) == [ids[0]]
    assert "Page 2 of 2" in second


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=bogus", "Filter status=&#39;bogus&#39; is not one of"),
        ("sentiment=angry", "Filter sentiment=&#39;angry&#39; is not one of"),
        ("order=random", "Filter order=&#39;random&#39; is not one of"),
        ("page=0", "is not a page number"),
        ("page=abc", "is not a page number"),
        ("page=%C2%B2", "is not a page number"),
        ("since=yesterday", "is not a date like 2026-11-30"),
        ("since=2026-02-02&until=2026-01-01", "is after until"),
        ("overdue=yes", "use 1, or leave it out"),
        ("flow=" + "x" * 300, "longer than 200 characters"),
    ],
)
async def test_a_filter_that_cannot_be_is_a_400_saying_why(
    as_support: Desk, query: str, message: str
) -> None:
    answer = await as_support.client.get(f"/desk/queue?{query}")
    assert answer.status_code == 400
    assert message in answer.text


async def test_items_past_the_response_target_are_marked_and_filtered(as_support: Desk) -> None:
    late = await flag(as_support.app, "41")
    fresh = await flag(as_support.app, "42")
    target = as_support.app.settings.desk.response_target_hours
    age(as_support.app, late, target + 1)
    page = await queue(as_support)
    rows = dict(zip(ids_on(page), re.findall(r"<tr class=\"([^\"]+)\">", page), strict=True))
    assert "overdue" in rows[late] and "overdue" not in rows[fresh]
    assert "past target" in page
    assert ids_on(await queue(as_support, "overdue=1")) == [late]
    await acknowledge(as_support, late)  # acknowledged: no longer past the target
    assert ids_on(await queue(as_support, "overdue=1")) == []


async def test_response_times_of_7_and_30_days_are_shown(as_support: Desk) -> None:
    review_id = await flag(as_support.app, "41")
    before = await queue(as_support)
    assert "Last 7 days" in before and "Last 30 days" in before
    assert "(0 items)" in before
    await acknowledge(as_support, review_id)
    after = await queue(as_support)
    box = after[after.index("Last 7 days") : after.index("Last 30 days")]
    assert "p50 <strong>0 min</strong>" in box
    assert "(1 items)" in box


async def test_customer_text_is_escaped_on_the_queue(as_support: Desk) -> None:
    await flag(as_support.app, "41", name="<b>Eve</b>", comment=XSS)
    page = await queue(as_support)
    assert XSS not in page and "<b>Eve</b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;Eve&lt;/b&gt;" in page
