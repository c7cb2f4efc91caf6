"""Nothing lost, nothing stuck: `cxbot serve` on Telegram, killed with SIGKILL and restarted.

Thirty customers answer the default survey through buttons and text, long polling the loopback
fake Bot API, which answers sendMessage after 100–200 ms as Telegram does. Meanwhile serve is
killed five times at seeded moments — just after getUpdates handed over a batch, while a reply
was being sent, and at random — and restarted each time. Customers only answer what they
received and never repeat themselves, so a survey that needs a nudge never finishes.

Asserted from the fake's records and the database: every update the fake saw confirmed was
processed, once; every survey completed with each answer stored once; every customer received
every message of the survey; messages sent twice ≤ kills. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kill_harness import (
    AFTER_BATCH,
    KINDS,
    MID_SEND,
    Customers,
    Killer,
    kill_database,
    read_outcome,
    repeated,
    serve_env,
    start_serve,
)
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.slow

CUSTOMERS = 30
KILLS = 5
FIRST_CHAT = 5000
SCORES = {"a:nps:": "9", "a:ces:": "6", "a:csat:": "4"}
EXPECTED_ANSWERS = ["nps", "liked_most", "ces", "csat", "anything_else"]
THANKS = "Thank you for your feedback, Ann!"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kill_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for serve: a SQLite file, or a new PostgreSQL database."""
    yield from kill_database(request.param, tmp_path)


def _react(fake: FakeTelegramAPI, people: Customers, chat: int, message_id: int, body: Any) -> None:
    """A customer reads a message the bot delivered and answers it (once) if it asks."""
    user = str(chat)
    rows = (body.get("reply_markup") or {}).get("inline_keyboard") or []
    buttons = [b["callback_data"] for row in rows for b in row]
    if buttons:
        prefix = buttons[0].rsplit(":", 1)[0] + ":"
        data = prefix + SCORES.get(prefix, buttons[0].rsplit(":", 1)[1])
        people.answer_once(user, prefix, lambda: fake.press(chat, message_id, data))
    elif body["text"].rstrip().endswith("?"):
        text = f"answer from {chat} to: {body['text'][:20]}"
        people.answer_once(user, body["text"], lambda: fake.send_text(chat, text))


async def _run_scenario(
    fake: FakeTelegramAPI, env: dict[str, str], tmp_path: Path, seed: int
) -> list[str]:
    rng = random.Random(seed)
    people = Customers(rng=rng)
    killer = Killer(rng=rng)
    fake.on_batch = lambda batch: killer.on_batch()
    fake.on_call = lambda method, body: killer.on_send() if method == "sendMessage" else None
    log = tmp_path / "serve.log"
    proc = start_serve(env, tmp_path, log)
    killer.proc = proc
    seen = 0
    starts = [FIRST_CHAT + i for i in range(CUSTOMERS)]
    for chat in starts:
        people.answer_once(str(chat), "start", lambda c=chat: fake.send_text(c, "/start"))

    def customers_act() -> None:
        nonlocal seen
        delivered = fake.delivered[seen:]
        seen += len(delivered)
        for chat, message_id, body in delivered:
            _react(fake, people, chat, message_id, body)
        people.pump()

    async def run_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            customers_act()
            await asyncio.sleep(0.02)

    try:
        for number in range(KILLS):
            await run_for(rng.uniform(1.0, 2.0))
            kind = KINDS[number % len(KINDS)]
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
            proc = start_serve(env, tmp_path, log)
            killer.proc = proc
        done_by = time.monotonic() + 90
        while time.monotonic() < done_by:
            await run_for(0.5)
            if _all_thanked(fake) and fake.pending_updates() == 0:
                break
        await run_for(0.5)  # let the last button edits and answers land
    finally:
        fake.on_batch = None
        fake.on_call = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return killer.kills


def _all_thanked(fake: FakeTelegramAPI) -> bool:
    thanked = {chat for chat, _, body in fake.delivered if body["text"] == THANKS}
    return len(thanked) == CUSTOMERS


async def test_sigkill_at_the_worst_moments_loses_nothing(kill_db_url: str, tmp_path: Path) -> None:
    with FakeTelegramAPI() as fake:
        fake.latency["sendMessage"] = (0.1, 0.2)
        env = serve_env(
            tmp_path / "data",
            kill_db_url,
            telegram__token=fake.token,
            telegram__base_url=fake.base_url,
        )
        kills = await _run_scenario(fake, env, tmp_path, seed=20261129)
        log = (tmp_path / "serve.log").read_text(errors="replace")

        outcome = read_outcome(kill_db_url)
        inbox, states, answers = outcome.inbox, outcome.states, outcome.answers

        confirmed = fake.confirmed
        lost = [u for u in confirmed if str(u["update_id"]) not in inbox]
        unprocessed = outcome.unprocessed()
        duplicates = repeated((chat, body["text"]) for chat, _, body in fake.delivered)
        print(
            f"\nkill test: {len(kills)} kills ({', '.join(kills)}); "
            f"{len(confirmed)} updates confirmed, {len(inbox)} recorded, "
            f"{len(inbox) - len(unprocessed)} processed, lost {len(lost)}, "
            f"messages sent {len(fake.delivered)}, duplicates {duplicates}"
        )
        assert len(kills) == KILLS
        assert {AFTER_BATCH, MID_SEND} <= {k.split(" (")[0] for k in kills}
        assert lost == [], log[-3000:]
        assert unprocessed == [], log[-3000:]
        users = [str(FIRST_CHAT + i) for i in range(CUSTOMERS)]
        assert {u: states.get(u) for u in users} == dict.fromkeys(users, "completed"), log[-3000:]
        assert {u: answers.get(u) for u in users} == dict.fromkeys(users, EXPECTED_ANSWERS)
        for chat in (FIRST_CHAT + i for i in range(CUSTOMERS)):
            texts = [body["text"] for c, _, body in fake.delivered if c == chat]
            assert len(set(texts)) == 7 and texts[-1] == THANKS, texts  # intro … thanks
        assert duplicates <= len(kills)
