"""Run `cxbot serve` in the test's event loop, and make one storage call fail once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.app import App, build_app
from bot.config import Settings
from bot.serve import Serving, serve


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[App, str]]:
    """`serve` (127.0.0.1, the port in ``settings``) until the block ends; yields (app, url)."""
    app = build_app(settings)
    stop = asyncio.Event()
    ready: asyncio.Future[Serving] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, stop=stop, on_ready=ready.set_result))
    await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # start-up failed: show why
    try:
        yield app, ready.result().url
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        app.close()


def fail_first_call(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    """Make ``owner.name`` raise once (a lost database connection), then behave normally."""
    real = getattr(owner, name)
    failed = False

    def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal failed
        if not failed:
            failed = True
            raise RuntimeError("database connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
