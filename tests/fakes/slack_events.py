"""Slack's side of HTTP mode for kill tests: signed requests posted to the app, retried.

Slack posts each event (and each button press) to the app's request URL and expects a 200
within 3 seconds. One that gets no answer — the connection refused or reset because the app was
killed, a timeout, a 5xx — is posted again later, signed anew, with `X-Slack-Retry-Num` (1, 2,
…) and `X-Slack-Retry-Reason`. `SlackDeliveries` does that until the app answers 200: the test
queues requests (`event`, `press`), calls `pump()` in its loop, and reads what was answered.

Slack itself retries an event three times (at once, after a minute, after five) and does not
retry an interactive payload (the person presses again: a new press); here every request is
retried, a fraction of a second apart, until it is answered, so that a test's customers never
give up and a kill test's downtime of seconds is not stretched to minutes.

The URL is asked for at each attempt (`url()`, None while the app is starting), so deliveries
follow a restarted app to its new port. Each delivery carries the inbox key the app should
record it under: an event's `event_id`, a press's `action:<user>:<action_ts>`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fakes.slack_api import form, sign

SLACK_TIMEOUT = 3.0  # Slack gives up on an answer after 3 s and retries


@dataclass
class Delivery:
    """One request Slack must get answered: its body and how many times it was posted."""

    key: str  # the inbox key the app records it under
    body: bytes
    content_type: str
    attempts: int = 0  # posts made; every post after the first is a retry
    due: float = 0.0  # time.monotonic() of the next post
    answered: bool = False  # got a 200
    reasons: list[str] = field(default_factory=list)  # why each unanswered post failed


@dataclass
class SlackDeliveries:
    """Posts queued requests to the app's /slack/events, retrying until each gets a 200."""

    http: httpx.AsyncClient
    url: Callable[[], str | None]
    rng: random.Random
    retry_after: tuple[float, float] = (0.2, 0.6)
    # Called as soon as a post was answered 200 (the kill test's "after an answer").
    on_answered: Callable[[Delivery], None] | None = None
    all: list[Delivery] = field(default_factory=list)
    _in_flight: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    def event(self, body: dict[str, Any]) -> Delivery:
        """Queue an Events API request (keyed by its event_id)."""
        return self._queue(str(body["event_id"]), json.dumps(body).encode(), "application/json")

    def press(self, payload: dict[str, Any]) -> Delivery:
        """Queue a `block_actions` request (keyed by presser and action_ts)."""
        stamp = payload["actions"][0]["action_ts"]
        key = f"action:{payload['user']['id']}:{stamp}"
        return self._queue(key, form(payload), "application/x-www-form-urlencoded")

    def _queue(self, key: str, body: bytes, content_type: str) -> Delivery:
        delivery = Delivery(key, body, content_type, due=time.monotonic())
        self.all.append(delivery)
        return delivery

    @property
    def answered(self) -> list[Delivery]:
        """Deliveries the app answered with 200."""
        return [d for d in self.all if d.answered]

    @property
    def pending(self) -> int:
        """Deliveries not answered yet."""
        return sum(1 for d in self.all if not d.answered)

    @property
    def retries(self) -> int:
        """Posts that were retries (`X-Slack-Retry-Num` set)."""
        return sum(max(d.attempts - 1, 0) for d in self.all)

    def pump(self) -> None:
        """Post every due delivery that is not in flight (when the app's URL is known)."""
        url = self.url()
        if url is None:
            return
        now = time.monotonic()
        for delivery in self.all:
            if delivery.answered or delivery.due > now or id(delivery) in self._in_flight:
                continue
            task = asyncio.create_task(self._post(delivery, url))
            self._in_flight[id(delivery)] = task

    async def _post(self, delivery: Delivery, url: str) -> None:
        headers = {"Content-Type": delivery.content_type, **sign(delivery.body)}
        if delivery.attempts:
            headers["X-Slack-Retry-Num"] = str(delivery.attempts)
            headers["X-Slack-Retry-Reason"] = delivery.reasons[-1]
        delivery.attempts += 1
        reason = ""
        try:
            response = await self.http.post(
                f"{url}/slack/events",
                content=delivery.body,
                headers=headers,
                timeout=SLACK_TIMEOUT,
            )
        except httpx.TimeoutException:
            reason = "http_timeout"
        except httpx.TransportError:
            reason = "connection_failed"
        else:
            if response.status_code != 200:
                reason = "http_error"
        finally:
            self._in_flight.pop(id(delivery), None)
        if not reason:
            delivery.answered = True
            if self.on_answered is not None:
                self.on_answered(delivery)
            return
        delivery.reasons.append(reason)
        delivery.due = time.monotonic() + self.rng.uniform(*self.retry_after)

    async def close(self) -> None:
        """Cancel the posts in flight."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._in_flight.clear()
