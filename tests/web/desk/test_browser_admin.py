"""The analytics and flow pages in a real browser: Playwright driving Debian's Chromium against
`cxbot serve` (Telegram polling the fake Bot API, Slack alerts, the desk on).

Eight weeks of responses are stored as the bot stores them (two channels, comments labelled,
a `plan` segment, touchpoints); Bo answered the live survey on Telegram, so `post_interaction`
v1 is live from its file. The tests read each chart's points from Chart.js and from the
pixels drawn, change a filter, and work a flow through validate → simulate → publish → diff
→ rollback as an admin, asserting on what is stored and on what a customer is asked next.
The pages are saved to docs/screenshots/ (see tests/fakes/browser.py).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, expect

from bot import flow_admin
from tests.fakes.analytics_data import Responses
from tests.fakes.browser import BROWSER_MARKS, PHONE, Tab, chromium, open_tab, screenshot
from tests.fakes.desk_scenario import PASSWORD, DeskStage, desk_serving

pytestmark = [*BROWSER_MARKS, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "ana@example.com"
SUPPORT = "sam@example.com"
BO, CY = 42, 43
FIRST_WEEK = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
WEEKS = 8
VIEW = "/desk/analytics?by=week&since=2026-01-05&until=2026-03-01&tz=UTC"
ASKED = "Sorry to hear that. What should we fix first?"  # the bundled flow's follow-up to 0–6
CHANGED = "Sorry about that! What should we fix first?"
WORDS = {
    "negative": ["the app crashed during checkout", "support was slow to answer", "slow refund"],
    "neutral": ["it was fine", "ok delivery"],
    "positive": ["great support team", "fast delivery and great prices", "friendly agent"],
}


@dataclass
class Scene:
    """The running desk with its stored responses."""

    stage: DeskStage


def _seed(stage: DeskStage) -> None:
    """Eight weeks of answers: slack weeks are small (too few for a margin), telegram ones
    large; week 6 dips."""
    rng = random.Random(14)
    responses = Responses(stage.app.db)
    for week in range(WEEKS):
        start = FIRST_WEEK + timedelta(weeks=week)
        for channel, count in (("telegram", 14 + 2 * week), ("slack", 3 + week % 3)):
            for i in range(count):
                dip = 3 if week == 5 else 0
                nps = max(0, min(10, round(rng.gauss(8 - dip, 2.2))))
                label = "negative" if nps <= 6 else rng.choice(["neutral", "positive", "positive"])
                responses.add(
                    start + timedelta(hours=3 * i, minutes=week),
                    nps=nps,
                    ces=max(1, min(7, round(rng.gauss(5.2 - dip / 2, 1.2)))),
                    csat=max(1, min(5, round(rng.gauss(4.1 - dip / 3, 0.8)))),
                    comment=rng.choice(WORDS[label]),
                    label=label,
                    channel=channel,
                    flow="post_interaction",
                    touchpoint=rng.choice(["support_ticket", "delivery"]),
                    context={"plan": rng.choice(["pro", "free"])},
                )


@pytest_asyncio.fixture(loop_scope="module")
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async with desk_serving(tmp_path) as stage:
        await stage.flag(BO, name="Bo", score=2, comment="awful app")  # post_interaction v1
        stage.add_user(ADMIN, "admin")
        stage.add_user(SUPPORT, "support")
        _seed(stage)
        yield Scene(stage=stage)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def signed_in(
    browser: Browser, scene: Scene, email: str, *, viewport: ViewportSize | None = None
) -> Tab:
    """A fresh tab of `email`, signed in, on the queue."""
    tab = await open_tab(browser, scene.stage.url, viewport=viewport)
    page = tab.page
    await page.goto("/desk/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    return tab


async def page_data(page: Page) -> dict[str, Any]:
    """The figures the page carries for its charts (its JSON data block)."""
    text = await page.locator("#analytics-data").text_content()
    assert text is not None
    data: dict[str, Any] = json.loads(text)
    return data


_DRAWN = """(id) => {
  const chart = Chart.getChart(id);
  const canvas = chart.canvas;
  const ctx = canvas.getContext("2d");
  const ratio = canvas.width / canvas.getBoundingClientRect().width;
  return chart.getDatasetMeta(2).data.map((point, i) => {
    const value = chart.data.datasets[2].data[i];
    if (value === null) return null;
    const x = Math.round(point.x * ratio), y = Math.round(point.y * ratio);
    const pixel = ctx.getImageData(x, y, 1, 1).data;
    return {
      value: value,
      at: chart.scales.y.getValueForPixel(point.y),
      rgb: [pixel[0], pixel[1], pixel[2]],
      alpha: pixel[3],
    };
  });
}"""


async def drawn_points(page: Page, canvas_id: str) -> list[dict[str, Any] | None]:
    """Each point of a trend chart: its value, the value at its height on the y axis, and the
    colour of the pixel drawn at its centre (None where the bucket has no answer)."""
    points: list[dict[str, Any] | None] = await page.evaluate(_DRAWN, canvas_id)
    return points


BLUE, WHITE = (36, 86, 201), (255, 255, 255)


def looks(rgb: list[int], colour: tuple[int, int, int]) -> bool:
    """A pixel of `colour`, give or take the rounding of the canvas's colour management."""
    return all(abs(a - b) <= 3 for a, b in zip(rgb, colour, strict=True))


async def test_the_nps_chart_shows_each_week_and_a_filter_changes_it(
    browser: Browser, scene: Scene
) -> None:
    tab = await signed_in(browser, scene, SUPPORT)
    page = tab.page
    await page.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    await page.goto(VIEW)
    await expect(page.locator("canvas[data-drawn]")).to_have_count(8)  # 3 trends, 3 dists, 2
    data = await page_data(page)
    series = data["series"]
    assert [p["start"] for p in series] == [
        (FIRST_WEEK + timedelta(weeks=w)).date().isoformat() for w in range(WEEKS)
    ]
    assert all(p["nps"]["n"] >= 17 and p["nps"]["moe"] is not None for p in series)
    points = await drawn_points(page, "chart-nps")
    assert [p["value"] if p else None for p in points] == [p["nps"]["score"] for p in series]
    for point in points:
        assert point is not None
        assert abs(point["at"] - point["value"]) < 0.5  # drawn at its value's height
        assert looks(point["rgb"], BLUE) and point["alpha"] == 255  # filled: enough answers
    await screenshot(page, "analytics")

    # Slack only: every week has 3–5 answers, too few for a margin: drawn hollow.
    await page.get_by_label("Channel").fill("slack")
    await page.get_by_role("button", name="Apply").click()
    await expect(page).to_have_url(re.compile(r"channel=slack"))
    await expect(page.locator("canvas[data-drawn]")).to_have_count(8)
    slack = (await page_data(page))["series"]
    assert [p["nps"]["n"] for p in slack] == [3 + w % 3 for w in range(WEEKS)]
    assert all(p["nps"]["moe"] is None for p in slack)
    assert slack != series
    points = await drawn_points(page, "chart-nps")
    assert [p["value"] if p else None for p in points] == [p["nps"]["score"] for p in slack]
    assert all(p is not None and looks(p["rgb"], WHITE) for p in points)  # hollow
    table = page.locator("#table-nps")
    await expect(table.locator("tbody tr")).to_have_count(WEEKS)
    await expect(table.locator("tbody tr").first).to_contain_text("(few)")
    assert tab.errors == [], tab.errors  # no script error, no asset refused by the CSP


async def test_the_analytics_and_flow_pages_fit_a_phone(browser: Browser, scene: Scene) -> None:
    for email, path in ((SUPPORT, VIEW), (ADMIN, "/desk/flows/post_interaction")):
        tab = await signed_in(browser, scene, email, viewport=PHONE)
        await tab.page.goto(path)
        await expect(tab.page.get_by_role("heading", level=1)).to_be_visible()
        width = await tab.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a phone"
        assert tab.errors == [], tab.errors


async def test_a_support_user_cannot_reach_the_flow_pages(browser: Browser, scene: Scene) -> None:
    tab = await signed_in(browser, scene, SUPPORT)
    page = tab.page
    await expect(page.get_by_role("link", name="Flows")).to_have_count(0)
    await expect(page.get_by_role("link", name="Analytics")).to_have_count(1)
    for path in ("/desk/flows", "/desk/flows/post_interaction"):
        response = await page.goto(path)
        assert response is not None and response.status == 403
        await expect(page.get_by_role("alert")).to_contain_text("for admins only")
        await expect(page.locator("textarea")).to_have_count(0)


def versions(scene: Scene) -> list[tuple[int, str, str | None]]:
    found = flow_admin.versions(scene.stage.app.db, "post_interaction")
    return [(v.version, v.origin, v.published_by) for v in found]


async def test_an_admin_edits_simulates_publishes_diffs_and_rolls_back_a_flow(
    browser: Browser, scene: Scene
) -> None:
    stage = scene.stage
    tab = await signed_in(browser, scene, ADMIN)
    page = tab.page
    await page.get_by_role("link", name="Flows").click()
    await expect(page.get_by_role("heading", name="Flows")).to_be_visible()
    row = page.locator("table.flows tbody tr").filter(has_text="post_interaction")
    await expect(row).to_contain_text("v1")
    await screenshot(page, "flows")
    await row.get_by_role("link", name="post_interaction").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Flow post_interaction")

    editor = page.get_by_label("Flow TOML")
    live = await editor.input_value()
    assert ASKED in live
    # An edit with a mistake: the follow-up asks about a question that does not exist.
    when = 'when = { question = "nps", lte = 6 }'
    broken = live.replace(when, when.replace("nps", "npz"))
    bad_line = live.split("\n").index(when) + 1
    await editor.fill(broken)
    async with page.expect_response(lambda r: r.url.endswith("/validate")) as answered:
        await page.get_by_role("button", name="Validate").click()
    assert (await answered.value).status == 422
    problem = page.locator("ol.problems a").first
    await expect(problem).to_have_text(f"Line {bad_line}")
    await expect(page.locator("ol.problems li").first).to_contain_text("npz")
    assert await editor.input_value() == broken  # kept as typed
    await expect(page.locator(f"#line-{bad_line}")).to_have_class("bad")
    await problem.click()  # selects that line in the editor
    selected = await editor.evaluate("(el) => el.value.slice(el.selectionStart, el.selectionEnd)")
    assert selected == when.replace("nps", "npz")

    # Fixed, and the follow-up reworded; simulated as a detractor.
    fixed = live.replace(ASKED, CHANGED)
    await editor.fill(fixed)
    await page.get_by_label("Answers so far, one per line").fill("3\nthe app is slow")
    await page.get_by_role("button", name="Simulate").click()
    transcript = page.locator("ol.transcript")
    await expect(transcript).to_contain_text(CHANGED)
    await expect(transcript.locator(".from-customer").nth(1)).to_contain_text("the app is slow")
    await expect(page.get_by_role("status").first).to_contain_text("nothing was stored")
    assert await editor.input_value() == fixed
    assert versions(scene) == [(1, "file", None)]  # nothing stored by validate or simulate
    await screenshot(page, "flow-editor")

    await page.get_by_role("button", name="Publish").click()
    await expect(page.locator(".flash-ok")).to_have_text(
        "Published post_interaction as version 2; new surveys start on it."
    )
    assert versions(scene) == [(1, "file", None), (2, "publish", f"desk:{ADMIN}")]
    assert flow_admin.source_of(stage.app.db, "post_interaction", 2) == fixed
    # A new customer is asked the published follow-up.
    stage.telegram.send_text(CY, "/start", first_name="Cy")
    await stage.telegram.wait_texts(CY, 2)
    stage.telegram.send_text(CY, "4", first_name="Cy")
    asked = await stage.telegram.wait_texts(CY, 3)
    assert asked[-1] == CHANGED

    # The diff of v1 and the live v2: one line out, one in.
    await (
        page.locator("tr").filter(has_text="v1").get_by_role("link", name="Diff with live").click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "post_interaction: version 1 → version 2"
    )
    await expect(page.locator(".diff-remove")).to_have_count(1)
    await expect(page.locator(".diff-remove")).to_contain_text(ASKED)
    await expect(page.locator(".diff-add")).to_have_count(1)
    await expect(page.locator(".diff-add")).to_contain_text(CHANGED)

    # Roll back to v1: its content, live again as v3.
    await page.get_by_role("link", name="post_interaction").click()
    await page.get_by_role("button", name="Roll back to v1").click()
    await expect(page.locator(".flash-ok")).to_have_text(
        "Version 1's content is live again as version 3."
    )
    assert versions(scene) == [
        (1, "file", None),
        (2, "publish", f"desk:{ADMIN}"),
        (3, "rollback", f"desk:{ADMIN}"),
    ]
    assert await editor.input_value() == live
    live_row = page.locator("table.versions tbody tr").first
    await expect(live_row).to_contain_text("v3")
    await expect(live_row).to_contain_text("live")
    assert tab.dialogs == [] and tab.errors == [], tab.errors
