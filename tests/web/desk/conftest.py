"""The desk app over a real, migrated SQLite database, with a client that keeps its cookie.

`desk` is the mounted app as `cxbot serve` mounts it (`web.server.build_web_app`), with a clock
the tests move, a sign-in limiter they can set, and recorders of what the desk told serve
(alerts to update, replies queued).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.app import App
from bot.desk_users import DeskAccount, add_user
from bot.desk_work import DeskWork
from bot.login_limit import LoginLimiter
from tests.fakes.clock import FakeClock
from web.desk.app import DESK_PREFIX, build_desk_app
from web.server import Mount, build_web_app

PASSWORD = "correct horse battery"
PAGE_SIZE = 5  # the least [desk] page_size allows: pagination with few items
ADMIN = "ana@example.com"
SUPPORT = "bo@example.com"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Desk:
    """The desk under test: its client, app, clock, and what it told serve."""

    client: httpx.AsyncClient
    app: App
    clock: FakeClock
    changed: list[int] = field(default_factory=list)  # review ids whose alert should update
    queued: list[int] = field(default_factory=list)  # one entry per reply queued
    served: set[str] = field(default_factory=lambda: {"telegram", "slack"})

    async def csrf(self, path: str = "/desk/login") -> str:
        """The CSRF token of a page's forms (GET `path`)."""
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = _TOKEN.search(page.text)
        assert found is not None, f"no CSRF token on {path}"
        return found.group(1)

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        """Fill and send the sign-in form as a browser does."""
        token = await self.csrf()
        return await self.client.post(
            "/desk/login", data={"email": email, "password": password, "csrf_token": token}
        )

    async def post(
        self, path: str, data: dict[str, str], *, page: str | None = None
    ) -> httpx.Response:
        """POST a form of `page` (default: `path`'s item or list page) with its CSRF token."""
        token = await self.csrf(page or "/desk/queue")
        return await self.client.post(path, data={**data, "csrf_token": token})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def limiter_clock() -> list[float]:
    return [1000.0]


@pytest.fixture
async def desk(app: App, clock: FakeClock, limiter_clock: list[float]) -> AsyncIterator[Desk]:
    served = {"telegram", "slack"}
    changed: list[int] = []
    queued: list[int] = []
    settings = app.settings.desk.model_copy(update={"page_size": PAGE_SIZE})
    work = DeskWork(db=app.db, settings=settings, can_reply=lambda c: c in served)

    async def on_changed(review_id: int) -> None:
        changed.append(review_id)

    work.on_changed(on_changed)
    work.on_queued(lambda: queued.append(1))
    limiter = LoginLimiter(3, timedelta(minutes=15), clock=lambda: limiter_clock[0])
    desk_app = build_desk_app(
        db=app.db,
        settings=settings,
        work=work,
        limiter=limiter,
        clock=clock,
        app_settings=app.settings,
    )
    web = build_web_app(mounts=[Mount(DESK_PREFIX, desk_app)])
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Desk(
            client=client,
            app=app,
            clock=clock,
            changed=changed,
            queued=queued,
            served=served,
        )


@pytest.fixture
def admin(app: App) -> DeskAccount:
    return add_user(app.db, email=ADMIN, role="admin", password=PASSWORD)


@pytest.fixture
def support(app: App) -> DeskAccount:
    return add_user(app.db, email=SUPPORT, role="support", password=PASSWORD)


@pytest.fixture
async def as_admin(desk: Desk, admin: DeskAccount) -> Desk:
    assert (await desk.sign_in(ADMIN)).status_code == 303
    return desk


@pytest.fixture
async def as_support(desk: Desk, support: DeskAccount) -> Desk:
    assert (await desk.sign_in(SUPPORT)).status_code == 303
    return desk
