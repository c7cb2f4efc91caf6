"""Reminders and expiry survive SIGKILL: `cxbot serve` is killed while it reminds and expires
surveys, and restarted.

Before serve starts, 40 Telegram surveys are a day past their last question (a reminder due)
and 10 are past their expiry. The fake Bot API answers sendMessage after 50–100 ms; serve is
killed three times — at its first reminder on the wire (the worker still deciding the rest),
and twice more while reminders are being sent — and restarted each time.

Asserted from the database and the fake's records: every due survey got exactly one reminder
decided (one outbox row, `reminders_sent` = 1), every one reached its customer, repeats on the
wire never outnumber the kills (the outbox's one window), and every expired survey is expired
with no reminder. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import build_app
from bot.config import load_settings
from bot.engine import Engine
from storage import outbox as out_q
from storage.database import transaction
from storage.tables import Conversation, Customer, OutboxMessage
from tests.fakes.kill_harness import kill_database, repeated, serve_env, start_serve
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.slow

FIRST_CHAT = 7000
REMINDED = [FIRST_CHAT + n for n in range(40)]
EXPIRING = [FIRST_CHAT + 100 + n for n in range(10)]
KILL_AT = (1, 12, 26)  # reminders seen on the wire when each kill fires


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kill_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from kill_database(request.param, tmp_path)


async def _surveys_asked_long_ago(env: dict[str, str]) -> None:
    """The surveys, begun as if hours ago; what they sent counts as delivered back then."""
    app = build_app(load_settings(None, environ=env))
    try:
        now = datetime.now(UTC)
        for chats, hours in ((REMINDED, 25), (EXPIRING, 73)):
            then = now - timedelta(hours=hours)
            engine = Engine(
                db=app.db, catalog=app.catalog, settings=app.settings, clock=lambda t=then: t
            )
            for chat in chats:
                await engine.begin(channel="telegram", user_id=str(chat))
        with transaction(app.db) as s:
            for row in s.exec(select(OutboxMessage)):
                assert row.id is not None
                out_q.record_sent(
                    s, message_id=row.id, platform_message_id=None, platform_chat=None
                )
    finally:
        app.close()


async def test_reminders_are_decided_once_and_expiries_kept_across_kills(
    kill_db_url: str, tmp_path: Path
) -> None:
    with FakeTelegramAPI() as fake:
        env = serve_env(
            tmp_path / "data",
            kill_db_url,
            telegram__token=fake.token,
            telegram__base_url=fake.base_url,
            reminders__batch_size="5",
            reminders__poll_seconds="0.5",
        )
        await _surveys_asked_long_ago(env)
        fake.known_chats.update(REMINDED + EXPIRING)
        fake.latency["sendMessage"] = (0.05, 0.1)
        seen = 0
        kill_now = threading.Event()
        targets = list(KILL_AT)

        def on_call(method: str, body: dict[str, object]) -> None:
            nonlocal seen
            if method == "sendMessage" and str(body.get("text", "")).startswith("Reminder:"):
                seen += 1
                if targets and seen >= targets[0]:
                    targets.pop(0)
                    kill_now.set()

        fake.on_call = on_call
        log = tmp_path / "serve.log"
        proc = start_serve(env, tmp_path, log)
        kills = 0
        try:
            while kills < len(KILL_AT):
                deadline = time.monotonic() + 60
                while not kill_now.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                assert kill_now.is_set(), f"no reminder went out before kill {kills + 1}"
                kill_now.clear()
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                proc = start_serve(env, tmp_path, log)
            done_by = time.monotonic() + 90
            while time.monotonic() < done_by and _reminded(fake) < set(REMINDED):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything still going out lands now
        finally:
            fake.on_call = None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

        assert _reminded(fake) == set(REMINDED), log.read_text()[-3000:]
        sends = [
            (chat, body["text"])
            for chat, _, body in fake.delivered
            if str(body["text"]).startswith("Reminder:")
        ]
        assert repeated(sends) <= kills

    decided, states = _stored(kill_db_url)
    assert decided == Counter({f"telegram:{chat}": 1 for chat in REMINDED})  # once each
    assert states == {
        **{str(chat): ("active", 1) for chat in REMINDED},
        **{str(chat): ("expired", 0) for chat in EXPIRING},
    }


def _reminded(fake: FakeTelegramAPI) -> set[int]:
    return {chat for chat, _, body in fake.delivered if str(body["text"]).startswith("Reminder:")}


def _stored(db_url: str) -> tuple[Counter[str], dict[str, tuple[str, int]]]:
    """Reminder rows per lane, and each customer's (survey state, reminders sent)."""
    from storage.database import create_db_engine

    engine = create_db_engine(db_url)
    try:
        with transaction(engine) as s:
            reminders = s.exec(select(OutboxMessage).where(OutboxMessage.purpose == "reminder"))
            decided = Counter(r.lane for r in reminders)
            rows = s.exec(
                select(Customer.external_id, Conversation.state, Conversation.reminders_sent).join(
                    Customer, col(Customer.id) == col(Conversation.customer_id)
                )
            )
            states = {user: (state, sent) for user, state, sent in rows}
        return decided, states
    finally:
        engine.dispose()
