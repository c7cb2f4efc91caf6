"""`wait_for_event`: set, timed out, and cancelled even as the event is set."""

from __future__ import annotations

import asyncio

import pytest

from bot.waiting import wait_for_event


async def test_it_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_for_event(event, 0.01) is False
    event.set()
    assert await wait_for_event(event, 10) is True


async def test_a_cancel_arriving_as_the_event_is_set_still_stops_the_waiter() -> None:
    # asyncio.wait_for on Python 3.11 returns normally here, and a worker loop never stops.
    event = asyncio.Event()
    waiter = asyncio.create_task(wait_for_event(event, 60))
    await asyncio.sleep(0)  # the waiter is now waiting
    event.set()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
