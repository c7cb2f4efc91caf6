"""Waiting for a wake-up signal with a time limit, in a way that can always be cancelled."""

from __future__ import annotations

import asyncio


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True if it was set.

    `asyncio.wait_for` is not used: on Python 3.11 it swallows a cancellation that arrives just
    as the event is set, so a worker loop built on it could not be stopped (`cxbot chat` hung
    at end of input). `asyncio.timeout` passes the cancellation on.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
