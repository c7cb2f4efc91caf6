"""Two `cxbot serve` processes on one PostgreSQL database share the work: in order, once.

A load balancer in front of two processes hands each webhook delivery to either of them, and
the platform may deliver an update again to the other. A customer's burst of messages,
alternating between the processes and each also delivered twice, must be applied in the order
it was sent, exactly once, and answered once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from storage.database import create_db_engine
from storage.tables import Answer, InboxUpdate
from tests.conftest import _postgres_database
from tests.fakes.telegram_api import FakeTelegramAPI
from web.server import TELEGRAM_SECRET_HEADER

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = "webhook_Secret-42"
ANN = 42


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_database()


def _serve(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).parent / "cxbot"
    proc = subprocess.Popen(
        [str(exe), "serve"], env={**os.environ, **env}, cwd=cwd, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"HTTP on (http://\S+)", line)
        if found:
            return proc, found.group(1).rstrip(";")
    raise AssertionError(f"serve did not start: {proc.wait()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_one_customers_burst_through_two_processes_is_applied_in_order_once(
    pg_url: str, tmp_path: Path
) -> None:
    with FakeTelegramAPI() as fake:
        env = {
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_DATABASE__URL": pg_url,
            "CXBOT_TELEGRAM__TOKEN": fake.token,
            "CXBOT_TELEGRAM__BASE_URL": fake.base_url,
            "CXBOT_TELEGRAM__MODE": "webhook",
            "CXBOT_TELEGRAM__WEBHOOK_URL": "https://cx.example.com/telegram/webhook",
            "CXBOT_TELEGRAM__SECRET_TOKEN": SECRET,
            "CXBOT_SERVER__PORT": "0",
            "CXBOT_SENTIMENT__ENABLED": "false",
        }
        # Started together against a fresh database: the migration runs once.
        first, url_a = _serve(env, tmp_path)
        second, url_b = _serve(env, tmp_path)
        try:
            burst = [
                fake.stamp(fake.message(ANN, text))
                for text in ["/start", "9", "great service", "6", "4", "no, that's all"]
            ]
            with httpx.Client(timeout=10) as http:
                for number, update in enumerate(burst):
                    urls = (url_a, url_b) if number % 2 == 0 else (url_b, url_a)
                    for url in urls:  # delivered to one, then again to the other
                        response = http.post(
                            f"{url}/telegram/webhook",
                            json=update,
                            headers={TELEGRAM_SECRET_HEADER: SECRET},
                        )
                        assert response.status_code == 200, response.text
            deadline = time.monotonic() + 30
            while len(fake.texts(ANN)) < 7 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # anything sent twice would show up by now
        finally:
            _stop(first)
            _stop(second)

        texts = fake.texts(ANN)
        assert len(texts) == 7, texts  # intro, NPS, liked most, CES, CSAT, anything else, thanks
        assert len(set(texts)) == 7, texts
        assert texts[-1] == "Thank you for your feedback, Ann!"
        engine = create_db_engine(pg_url)
        try:
            with Session(engine) as s:
                stored = s.exec(select(Answer).order_by(col(Answer.id))).all()
                inbox = s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all()
        finally:
            engine.dispose()
        assert [(a.question_id, a.value_int, a.value_text) for a in stored] == [
            ("nps", 9, None),
            ("liked_most", None, "great service"),
            ("ces", 6, None),
            ("csat", 4, None),
            ("anything_else", None, "no, that's all"),
        ]
        assert [row.event_key for row in inbox] == [str(u["update_id"]) for u in burst]
        assert all(row.processed_at is not None and row.attempts == 0 for row in inbox)
