"""The web desk in a real browser: Playwright driving Debian's Chromium against `cxbot serve`.

`serve` runs with Telegram polling the fake Bot API, Slack alerts going to the fake Slack API
and the desk on. Two Telegram customers answer the survey: Bo (NPS 2, a comment holding an HTML
injection, labelled negative) and Cy (NPS 5, labelled neutral at 80 % — low confidence here).
Each test signs in as a desk user and works through the pages as a person does; it asserts on
what the page shows, what was stored, what the customer received on Telegram and what the
Slack alert shows. The main pages are saved to docs/screenshots/ (see tests/fakes/browser.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, expect
from sqlmodel import col, select

from bot.desk_users import list_users
from storage.database import transaction
from storage.tables import LabelCorrection
from tests.fakes.browser import BROWSER_MARKS, PHONE, Tab, chromium, open_tab, screenshot
from tests.fakes.desk_scenario import PASSWORD, DeskStage, desk_serving
from tests.fakes.slack_setup import ALERTS, review_events, review_items, wait_until

# One browser for the module (launching takes a second or two); each test has its own desk
# and its own browser contexts (cookies). Both fixtures and tests share the module's loop.
pytestmark = [*BROWSER_MARKS, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "ana@example.com"
SUPPORT = "sam@example.com"
XSS = "<img src=x onerror=alert(1)>"
BO, CY = 42, 43
BO_SAID = f"{XSS} the app crashed twice"


@dataclass
class Scene:
    """The running desk, and the review items of Bo and Cy."""

    stage: DeskStage
    bo: int
    cy: int


@pytest_asyncio.fixture(loop_scope="module")
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    # The keyword model gives "neutral" 80 %: below 0.85 that is a low-confidence label.
    async with desk_serving(tmp_path, desk__low_confidence_below="0.85") as stage:
        bo = await stage.flag(BO, name="Bo", score=2, comment=BO_SAID)
        cy = await stage.flag(CY, name="Cy", score=5, comment="it was slow")
        stage.add_user(ADMIN, "admin")
        stage.add_user(SUPPORT, "support")
        yield Scene(stage=stage, bo=bo, cy=cy)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill the sign-in form (the page must show it) and land on the queue."""
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Review queue")).to_be_visible()


async def signed_in(
    browser: Browser, scene: Scene, email: str, *, viewport: ViewportSize | None = None
) -> Tab:
    """A fresh browser tab of `email` (own cookies), signed in, on the queue."""
    tab = await open_tab(browser, scene.stage.url, viewport=viewport)
    await tab.page.goto("/desk/login")
    await sign_in(tab.page, email)
    return tab


async def rows(page: Page) -> list[str]:
    """The "#id" of each row the queue shows, top to bottom."""
    return [
        t.strip()
        for t in await page.locator("table.queue tbody tr td:first-child").all_inner_texts()
    ]


async def slack_shows(stage: DeskStage, review_id: int, text: str) -> None:
    """Wait until a chat.update of the item's Slack alert carries `text`."""
    await wait_until(
        lambda: any(text in body for body in stage.alert_updates(review_id)),
        what=f"a chat.update of alert #{review_id} showing {text!r}",
    )


async def test_sign_in_and_filter_the_queue(browser: Browser, scene: Scene) -> None:
    tab = await open_tab(browser, scene.stage.url)
    page = tab.page
    await page.goto("/desk/queue")  # not signed in: sent to the sign-in page
    assert "/desk/login" in page.url
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await screenshot(page, "login")

    await page.get_by_label("E-mail").fill(ADMIN)
    await page.get_by_label("Password").fill("not the password")
    async with page.expect_response(lambda r: r.request.method == "POST") as refused:
        await page.get_by_role("button", name="Sign in").click()
    assert (await refused.value).status == 401
    await expect(page.get_by_role("alert")).to_be_visible()  # why it failed, on the form
    assert "/desk/login" in page.url

    await sign_in(page, ADMIN)
    assert await rows(page) == [f"#{scene.cy}", f"#{scene.bo}"]  # newest first
    await screenshot(page, "queue")

    # Negative sentiment: Bo only. The select offers each value with its count.
    sentiment = page.get_by_label("Sentiment")
    await expect(sentiment.locator("option[value=negative]")).to_have_text("negative (1)")
    await expect(sentiment.locator("option[value=neutral]")).to_have_text("neutral (1)")
    await sentiment.select_option("negative")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.queue tbody tr")).to_have_count(1)
    assert "sentiment=negative" in page.url
    assert await rows(page) == [f"#{scene.bo}"]

    # Low-confidence labels, any sentiment: Cy only.
    await sentiment.select_option("")
    await page.get_by_label("low-confidence labels").check()
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.queue tbody tr")).to_have_count(1)
    assert await rows(page) == [f"#{scene.cy}"]
    assert tab.errors == []


async def test_a_flagged_reply_is_worked_to_resolved_and_slack_shows_each_step(
    browser: Browser, scene: Scene
) -> None:
    stage = scene.stage
    tab = await signed_in(browser, scene, SUPPORT)
    page = tab.page
    await page.get_by_role("link", name=f"#{scene.bo}", exact=True).click()
    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_contain_text(f"Review item #{scene.bo}")
    await expect(heading).to_contain_text("open")

    await page.get_by_role("button", name="Acknowledge").click()
    await expect(heading).to_contain_text("acknowledged")
    await slack_shows(stage, scene.bo, f"Acknowledged by {SUPPORT} at ")

    reply = "Hi Bo, sorry about the crashes: the fix ships today."
    await page.get_by_label("Reply to the customer on telegram").fill(reply)
    await page.get_by_role("button", name="Send reply").click()
    await stage.telegram.wait_for(
        lambda: reply in stage.telegram.texts(BO), what="the reply on Telegram"
    )
    await slack_shows(stage, scene.bo, f"Replied by {SUPPORT} at ")
    await expect(page.locator(".timeline .from-support")).to_contain_text(reply)
    await screenshot(page, "item")  # acknowledged, the reply in the conversation and history

    note = "Fix released in 2.3.1; Bo was told."
    await page.get_by_label("Resolution note").fill(note)
    await page.get_by_role("button", name="Resolve").click()
    await expect(heading).to_contain_text("resolved")
    await slack_shows(stage, scene.bo, f"Flagged reply #{scene.bo} · resolved")
    await slack_shows(stage, scene.bo, f"Resolved by {SUPPORT} at ")
    await slack_shows(stage, scene.bo, note)
    # One alert per item, updated in place, never posted again.
    assert len(stage.slack.requests("chat.postMessage", channel=ALERTS)) == 2  # Bo's and Cy's

    history = page.locator("ol.history")
    for step in ("acknowledged", "replied", "resolved"):
        await expect(history).to_contain_text(f"{step} by {SUPPORT}")
    actor = f"desk:{SUPPORT}"
    assert review_events(stage.app) == [
        ("acknowledged", actor, None),
        ("replied", actor, reply),
        ("resolved", actor, note),
    ]
    assert [i.status for i in review_items(stage.app)] == ["resolved", "open"]
    assert tab.dialogs == [] and tab.errors == []


async def test_a_label_is_corrected_and_the_alert_shows_who_did_it(
    browser: Browser, scene: Scene
) -> None:
    stage = scene.stage
    tab = await signed_in(browser, scene, ADMIN)
    page = tab.page
    await page.goto(f"/desk/items/{scene.cy}")
    text = page.locator(".text-label").filter(has_text="it was slow")
    await expect(text).to_contain_text("neutral")
    await expect(text).to_contain_text("low confidence")
    await text.get_by_label("Correct to").select_option("negative")
    await text.get_by_role("button", name="Save label").click()
    await expect(text).to_contain_text(f"corrected by {ADMIN}")
    await expect(text).to_contain_text("the model said neutral")

    with transaction(stage.app.db) as s:
        (correction,) = s.exec(select(LabelCorrection).order_by(col(LabelCorrection.id))).all()
    assert (correction.old_label, correction.new_label, correction.model_label) == (
        "neutral",
        "negative",
        "neutral",
    )
    assert correction.actor == f"desk:{ADMIN}"
    assert correction.model_id == stage.classifier.model_id
    await slack_shows(stage, scene.cy, f" by {ADMIN} at ")
    await slack_shows(stage, scene.cy, "neutral → negative")
    assert tab.errors == []


async def test_customer_text_is_shown_as_text_never_run(browser: Browser, scene: Scene) -> None:
    tab = await signed_in(browser, scene, SUPPORT)
    page = tab.page
    row = page.locator("table.queue tbody tr").filter(has_text=f"#{scene.bo}")
    await expect(row).to_contain_text(XSS)  # the literal text, in the excerpt
    await page.goto(f"/desk/items/{scene.bo}")
    await expect(page.locator(".timeline")).to_contain_text(BO_SAID)
    await expect(page.locator(".text-label blockquote").first).to_have_text(BO_SAID)
    # No element was made from it, and no script ran.
    assert await page.locator("img").count() == 0
    await page.wait_for_timeout(200)  # a failed image load would fire onerror by now
    assert tab.dialogs == []
    assert tab.errors == []


async def test_support_users_are_refused_the_users_page_admins_see_it(
    browser: Browser, scene: Scene
) -> None:
    support = await signed_in(browser, scene, SUPPORT)
    await expect(support.page.get_by_role("link", name="Users")).to_have_count(0)
    response = await support.page.goto("/desk/users")
    assert response is not None and response.status == 403
    await expect(support.page.get_by_role("alert")).to_be_visible()
    await expect(support.page.locator("table.list")).to_have_count(0)

    admin = await signed_in(browser, scene, ADMIN)
    await admin.page.get_by_role("link", name="Users").click()
    await expect(admin.page.get_by_role("heading", name="Desk users")).to_be_visible()
    table = admin.page.locator("table.list")
    await expect(table).to_contain_text(ADMIN)
    await expect(table).to_contain_text(SUPPORT)
    await screenshot(admin.page, "users")

    # An admin adds a support user from the page; the new user can sign in.
    form = admin.page.locator("form").filter(has=admin.page.get_by_role("button", name="Add user"))
    await form.get_by_label("E-mail").fill("lee@example.com")
    await form.get_by_label("Role").select_option("support")
    await form.get_by_label("First password").fill("a long first password")
    await form.get_by_role("button", name="Add user").click()
    await expect(table).to_contain_text("lee@example.com")
    assert sorted((u.email, u.role) for u in list_users(scene.stage.app.db)) == [
        (ADMIN, "admin"),
        ("lee@example.com", "support"),
        (SUPPORT, "support"),
    ]
    lee = await open_tab(browser, scene.stage.url)
    await lee.page.goto("/desk/login")
    await sign_in(lee.page, "lee@example.com", "a long first password")


async def test_the_queue_and_an_item_work_at_phone_width(browser: Browser, scene: Scene) -> None:
    tab = await signed_in(browser, scene, SUPPORT, viewport=PHONE)
    page = tab.page
    await expect(page.get_by_role("link", name=f"#{scene.bo}", exact=True)).to_be_visible()
    assert await _scroll_width(page) <= PHONE["width"]  # nothing wider than the screen
    await screenshot(page, "queue-phone")
    await page.get_by_role("link", name=f"#{scene.bo}", exact=True).click()
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("acknowledged")
    assert await _scroll_width(page) <= PHONE["width"]
    assert [i.status for i in review_items(scene.stage.app)] == ["acknowledged", "open"]


async def _scroll_width(page: Page) -> int:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert isinstance(width, int)
    return width
