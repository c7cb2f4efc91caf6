"""Playwright driving Debian's Chromium for the browser tests, and the screenshots they save.

Playwright's own browser download does not work here: the tests launch `/usr/bin/chromium`
(`.ci/run` installs Debian's `chromium` when it is missing) and skip, saying why, without it.
They use Playwright's async API, so the browser and `cxbot serve` share the test's event loop
(the sync API refuses to run inside one).

    pytestmark = BROWSER_MARKS

    async with chromium() as browser:
        tab = await open_tab(browser, desk.url)
        await tab.page.goto("/desk/login")
        await screenshot(tab.page, "login")
        assert tab.dialogs == []
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Response,
    ViewportSize,
    async_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Overwrite the committed screenshots (else only missing ones are written, so that a test run
# leaves the checkout unchanged): UPDATE_SCREENSHOTS=1 .venv/bin/pytest -m browser
UPDATE_ENV = "UPDATE_SCREENSHOTS"

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)  # a common phone, portrait

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)",
    ),
]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Debian Chromium under Playwright, closed when the block ends."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """One person's page (own cookies), with every dialog and script error it met."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def open_tab(browser: Browser, base_url: str, *, viewport: ViewportSize | None = None) -> Tab:
    """A fresh browser context (no cookies) at `base_url`; dialogs are recorded and dismissed,
    script errors and assets that failed to load recorded, so a test can assert that none
    happened."""
    context = await browser.new_context(
        base_url=base_url, viewport=viewport or DESKTOP, locale="en-US", timezone_id="UTC"
    )
    context.set_default_timeout(5_000)  # a page that does not answer fails fast
    page = await context.new_page()
    tab = Tab(page=page)

    async def on_dialog(dialog: Dialog) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        # A 4xx page (a refused sign-in, a 403) logs "Failed to load resource": the tests
        # check those statuses themselves; any other console error is the page's fault.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            tab.errors.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        if "/static/" in response.url and response.status >= 400:
            tab.errors.append(f"asset {response.url}: {response.status}")

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: tab.errors.append(f"pageerror: {error}"))
    page.on("console", on_console)
    page.on("response", on_response)
    return tab


async def screenshot(page: Page, name: str) -> Path | None:
    """Save the whole page to docs/screenshots/NAME.png when that file is missing or
    UPDATE_SCREENSHOTS is set; the path written, else None."""
    path = SCREENSHOTS / f"{name}.png"
    if path.exists() and not os.environ.get(UPDATE_ENV):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path
