"""Nothing lost, nothing stuck: `cxbot serve` with Slack in HTTP mode, killed and restarted.

Customers answer the default survey in their DMs by pressing Block Kit buttons and typing,
each request signed and posted to serve's /slack/events as Slack posts it. The loopback fake
Web API answers chat.postMessage after 100–200 ms. A request that got no 200 — serve was
killed, or not up yet — is posted again, signed anew, with `X-Slack-Retry-Num`, until it gets
one, as Slack retries. Meanwhile serve is SIGKILLed five times at seeded moments — just after it
answered a request 200 (recorded, not yet handled), while a reply was being posted, and at
random — and restarted each time. Customers only answer what was posted to them and never
repeat themselves, so a survey that needs a nudge never finishes.

Asserted from the fake's records and the database: every request answered 200 is in the inbox
and processed, once; every survey completed with each answer stored once; every customer got
every message of the survey; messages posted twice ≤ kills. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.kill_harness import (
    AFTER_ANSWER,
    MID_SEND,
    WEBHOOK_KINDS,
    Customers,
    HttpServe,
    Killer,
    kill_database,
    read_outcome,
    repeated,
    serve_env,
)
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlackAPI, button_press, dm_event
from tests.fakes.slack_events import SlackDeliveries
from tests.fakes.slack_setup import ann_profile

pytestmark = pytest.mark.slow

CUSTOMERS = 30
KILLS = 5
SCORES = {"a:nps:": "9", "a:ces:": "6", "a:csat:": "4"}
EXPECTED_ANSWERS = ["nps", "liked_most", "ces", "csat", "anything_else"]
THANKS = "Thank you for your feedback, Ann!"


def _user(number: int) -> str:
    return f"U0C{number:06d}"


def _dm(user: str) -> str:
    return "D" + user[1:]  # what the fake's conversations.open answers


USERS = [_user(n) for n in range(1, CUSTOMERS + 1)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kill_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for serve: a SQLite file, or a new PostgreSQL database."""
    yield from kill_database(request.param, tmp_path)


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        e["value"]
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for e in block["elements"]
    ]


class _Slack:
    """What customers do in Slack, as requests Slack posts to the app (retried until 200)."""

    def __init__(self, deliveries: SlackDeliveries) -> None:
        self.deliveries = deliveries
        self._ids = itertools.count(1)

    def write(self, user: str, text: str) -> None:
        event_id = f"Ev0K{next(self._ids):07d}"
        self.deliveries.event(dm_event(user, text, event_id=event_id))

    def press(self, user: str, message: dict[str, Any], value: str) -> None:
        self.deliveries.press(button_press(user, _dm(user), message, value))


def _react(slack: _Slack, people: Customers, channel: str, message: dict[str, Any]) -> None:
    """A customer reads a message posted to their DM and answers it (once) if it asks."""
    user = "U" + channel[1:]
    values = _buttons(message)
    if values:
        prefix = values[0].rsplit(":", 1)[0] + ":"
        value = prefix + SCORES.get(prefix, values[0].rsplit(":", 1)[1])
        people.answer_once(user, prefix, lambda: slack.press(user, message, value))
    elif str(message["text"]).rstrip().endswith("?"):
        text = f"answer from {user} to: {message['text'][:20]}"
        people.answer_once(user, message["text"], lambda: slack.write(user, text))


async def _run_scenario(
    fake: FakeSlackAPI, serve: HttpServe, deliveries: SlackDeliveries, seed: int
) -> tuple[list[str], float]:
    """Kill and restart serve while customers answer; the kills, and how long the surveys took
    to finish after the last restart."""
    rng = random.Random(seed)
    people = Customers(rng=rng)
    killer = Killer(rng=rng)
    slack = _Slack(deliveries)
    fake.on_call = lambda method, body: killer.on_send() if method == "chat.postMessage" else None
    deliveries.on_answered = lambda delivery: killer.on_answered()
    proc = serve.start()
    killer.proc = proc
    seen = 0
    for user in USERS:
        people.answer_once(user, "start", partial(slack.write, user, "start"))

    def customers_act() -> None:
        nonlocal seen
        delivered = fake.delivered[seen:]
        seen += len(delivered)
        for channel, _ts, message in delivered:
            _react(slack, people, channel, message)
        people.pump()
        deliveries.pump()

    async def run_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            customers_act()
            await asyncio.sleep(0.02)

    async def until_up() -> None:
        # serve takes ~2 s to start: kills are meant for a process that is serving
        deadline = time.monotonic() + 20
        while not serve.up and proc.poll() is None and time.monotonic() < deadline:
            customers_act()
            await asyncio.sleep(0.02)

    try:
        for number in range(KILLS):
            await until_up()
            await run_for(rng.uniform(1.0, 2.5))
            kind = WEBHOOK_KINDS[number % len(WEBHOOK_KINDS)]
            killer.arm(kind)
            deadline = time.monotonic() + 5
            while proc.poll() is None and time.monotonic() < deadline:
                customers_act()
                await asyncio.sleep(0.01)
            if proc.poll() is None:  # the armed moment did not come: kill now
                killer.armed = None
                proc.send_signal(signal.SIGKILL)
                killer.kills.append(f"{kind} (fallback: now)")
            proc.wait()
            proc = serve.start()
            killer.proc = proc
        restarted = time.monotonic()
        done_by = restarted + 60
        while time.monotonic() < done_by:
            await run_for(0.5)
            if _all_thanked(fake) and deliveries.pending == 0:
                break
        tail = time.monotonic() - restarted
        await run_for(1.0)  # let the last question closes land
    finally:
        fake.on_call = None
        deliveries.on_answered = None
        await deliveries.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return killer.kills, tail


def _all_thanked(fake: FakeSlackAPI) -> bool:
    thanked = {channel for channel, _, message in fake.delivered if message["text"] == THANKS}
    return len(thanked) == CUSTOMERS


async def test_sigkill_at_the_worst_moments_loses_nothing(kill_db_url: str, tmp_path: Path) -> None:
    with FakeSlackAPI() as fake:
        fake.latency["chat.postMessage"] = (0.1, 0.2)
        for user in USERS:
            fake.profiles[user] = ann_profile(user)
        env = serve_env(
            tmp_path / "data",
            kill_db_url,
            slack__bot_token=fake.token,
            slack__signing_secret=SIGNING_SECRET,
            slack__base_url=fake.base_url,
            slack__mode="http",
        )
        log = tmp_path / "serve.log"
        serve = HttpServe(env, tmp_path, log)
        async with httpx.AsyncClient() as http:
            deliveries = SlackDeliveries(http=http, url=lambda: serve.url, rng=random.Random(7))
            kills, tail = await _run_scenario(fake, serve, deliveries, seed=20261130)
        output = log.read_text(errors="replace")[-3000:]

        outcome = read_outcome(kill_db_url)
        answered = deliveries.answered
        lost = [d.key for d in answered if d.key not in outcome.inbox]
        unprocessed = outcome.unprocessed()
        duplicates = repeated((channel, m["text"]) for channel, _, m in fake.delivered)
        print(
            f"\nslack kill test: {len(kills)} kills ({', '.join(kills)}); "
            f"{len(deliveries.all)} events posted ({deliveries.retries} retries), "
            f"{len(answered)} answered 200, {len(outcome.inbox)} recorded, "
            f"{len(outcome.inbox) - len(unprocessed)} processed, lost {len(lost)}, "
            f"messages sent {len(fake.delivered)}, duplicates {duplicates}; "
            f"all thanked {tail:.1f} s after the last restart"
        )
        assert len(kills) == KILLS
        assert {AFTER_ANSWER, MID_SEND} <= {k.split(" (")[0] for k in kills}
        assert deliveries.pending == 0, output
        assert lost == [], output
        assert unprocessed == [], output
        assert set(outcome.inbox) == {d.key for d in deliveries.all}
        states = {u: outcome.states.get(u) for u in USERS}
        assert states == dict.fromkeys(USERS, "completed"), output
        answers = {u: outcome.answers.get(u) for u in USERS}
        assert answers == dict.fromkeys(USERS, EXPECTED_ANSWERS)
        for user in USERS:
            texts = fake.sent_texts(_dm(user))
            assert len(set(texts)) == 7 and texts[-1] == THANKS, texts  # intro … thanks
        assert duplicates <= len(kills)
