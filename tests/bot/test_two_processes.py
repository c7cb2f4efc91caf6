"""Two `cxbot serve` processes on one PostgreSQL database share the work: in order, once.

A load balancer in front of two processes hands each webhook delivery to either of them, and
the platform may deliver an update again to the other. A customer's burst of messages,
alternating between the processes and each also delivered twice, must be applied in the order
it was sent, exactly once, and answered once: on Telegram (webhook) and on Slack (HTTP mode,
where the second delivery is a retry with `X-Slack-Retry-Num`, as Slack sends it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from storage.database import create_db_engine
from storage.tables import Answer, InboxUpdate
from tests.conftest import _postgres_database
from tests.fakes.kill_harness import serve_env
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlackAPI, dm_event, sign
from tests.fakes.slack_setup import ann_profile
from tests.fakes.telegram_api import FakeTelegramAPI
from web.server import TELEGRAM_SECRET_HEADER

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = "webhook_Secret-42"
ANN = 42
SLACK_ANN = "U0ANN0042"
SLACK_DM = "D0ANN0042"  # what the fake's conversations.open answers for SLACK_ANN
BURST = ["9", "great service", "6", "4", "no, that's all"]  # after the start word
STORED = [
    ("nps", 9, None),
    ("liked_most", None, "great service"),
    ("ces", 6, None),
    ("csat", 4, None),
    ("anything_else", None, "no, that's all"),
]
THANKS = "Thank you for your feedback, Ann!"


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
        env = serve_env(
            tmp_path / "data",
            pg_url,
            telegram__token=fake.token,
            telegram__base_url=fake.base_url,
            telegram__mode="webhook",
            telegram__webhook_url="https://cx.example.com/telegram/webhook",
            telegram__secret_token=SECRET,
        )
        # Started together against a fresh database: the migration runs once.
        first, url_a = _serve(env, tmp_path)
        second, url_b = _serve(env, tmp_path)
        try:
            burst = [fake.stamp(fake.message(ANN, text)) for text in ["/start", *BURST]]
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
        assert texts[-1] == THANKS
        stored, inbox = _stored(pg_url)
        assert stored == STORED
        assert [row.event_key for row in inbox] == [str(u["update_id"]) for u in burst]
        assert all(row.processed_at is not None and row.attempts == 0 for row in inbox)


def _post_slack(http: httpx.Client, url: str, body: bytes, *, retry: int) -> httpx.Response:
    """POST an Events API body to serve as Slack does: signed, a retry with its number."""
    headers = {"Content-Type": "application/json", **sign(body)}
    if retry:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return http.post(f"{url}/slack/events", content=body, headers=headers)


def _stored(db_url: str) -> tuple[list[tuple[str, int | None, str | None]], list[InboxUpdate]]:
    """The stored answers (question, value_int, value_text) and inbox rows, oldest first."""
    engine = create_db_engine(db_url)
    try:
        with Session(engine) as s:
            answers = s.exec(select(Answer).order_by(col(Answer.id))).all()
            inbox = list(s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all())
    finally:
        engine.dispose()
    return [(a.question_id, a.value_int, a.value_text) for a in answers], inbox


def test_one_slack_customers_burst_through_two_processes_is_applied_in_order_once(
    pg_url: str, tmp_path: Path
) -> None:
    with FakeSlackAPI() as fake:
        fake.profiles[SLACK_ANN] = ann_profile(SLACK_ANN)
        env = serve_env(
            tmp_path / "data",
            pg_url,
            slack__bot_token=fake.token,
            slack__signing_secret=SIGNING_SECRET,
            slack__base_url=fake.base_url,
            slack__mode="http",
        )
        first, url_a = _serve(env, tmp_path)
        second, url_b = _serve(env, tmp_path)
        try:
            burst = [
                dm_event(SLACK_ANN, text, event_id=f"Ev0BURST{number:03d}")
                for number, text in enumerate(["start", *BURST])
            ]
            with httpx.Client(timeout=10) as http, ThreadPoolExecutor(2) as pool:
                for number, event in enumerate(burst):
                    body = json.dumps(event).encode()
                    urls = (url_a, url_b) if number % 2 == 0 else (url_b, url_a)
                    # Posted to one and, before that answered, retried on the other (as Slack
                    # retries a request that is slow to answer): both are recording at once.
                    first_post = pool.submit(_post_slack, http, urls[0], body, retry=0)
                    time.sleep(0.005)
                    retry = pool.submit(_post_slack, http, urls[1], body, retry=1)
                    for response in (first_post.result(), retry.result()):
                        assert response.status_code == 200, response.text
            deadline = time.monotonic() + 30
            while len(fake.sent_texts(SLACK_DM)) < 7 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # anything posted twice would show up by now
        finally:
            _stop(first)
            _stop(second)

        texts = fake.sent_texts(SLACK_DM)
        assert len(texts) == 7, texts  # intro, NPS, liked most, CES, CSAT, anything else, thanks
        assert len(set(texts)) == 7, texts
        assert texts[-1] == THANKS
        assert [c.body["channel"] for c in fake.requests("chat.postMessage")] == [SLACK_DM] * 7
        stored, inbox = _stored(pg_url)
        assert stored == STORED
        assert [row.event_key for row in inbox] == [e["event_id"] for e in burst]
        assert all(row.processed_at is not None and row.attempts == 0 for row in inbox)
        assert all(row.last_error is None for row in inbox)
