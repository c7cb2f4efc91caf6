"""`cxbot serve`: channels, background tasks and the HTTP server start, run and stop together."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.app import App, build_app
from bot.config import Settings, load_settings
from bot.errors import CxbotError
from bot.serve import BackgroundTask, Service, Serving, serve
from tests.fakes.serving import running
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import telegram_settings


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[App]:
    """No channel configured; the HTTP server on a free port."""
    settings: Settings = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_SERVER__PORT": "0",
            "CXBOT_SENTIMENT__ENABLED": "false",
        },
    )
    app = build_app(settings)
    yield app
    app.close()


async def start(app: App, **kwargs: object) -> tuple[asyncio.Task[None], asyncio.Event, Serving]:
    stop = asyncio.Event()
    ready: asyncio.Future[Serving] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, stop=stop, on_ready=ready.set_result, **kwargs))  # type: ignore[arg-type]
    await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    return task, stop, ready.result()


async def test_without_channels_it_still_serves_healthz(plain: App) -> None:
    task, stop, serving = await start(plain)
    assert serving.channels == ()
    async with httpx.AsyncClient() as http:
        health = await http.get(f"{serving.url}/healthz")
    assert health.json() == {"status": "ok", "checks": {"database": "ok"}, "channels": []}
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def test_serve_answers_metrics_from_the_database(plain: App) -> None:
    task, stop, serving = await start(plain)
    async with httpx.AsyncClient() as http:
        await http.get(f"{serving.url}/healthz")
        metrics = await http.get(f"{serving.url}/metrics")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert metrics.status_code == 200
    assert "cxbot_sentiment_backlog 0.0" in metrics.text
    assert 'cxbot_http_responses_total{code="200"} 1.0' in metrics.text


async def test_services_start_in_order_stop_in_reverse_and_tasks_are_cancelled(
    plain: App,
) -> None:
    events: list[str] = []

    def service(name: str) -> Service:
        async def up() -> None:
            events.append(f"start {name}")

        async def down() -> None:
            events.append(f"stop {name}")

        return Service(name=name, start=up, stop=down)

    async def worker() -> None:
        events.append("worker running")
        try:
            await asyncio.Event().wait()
        finally:
            events.append("worker cancelled")

    task, stop, _ = await start(
        plain,
        services=[service("a"), service("b")],
        tasks=[BackgroundTask(name="worker", run=worker)],
    )
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert events == [
        "start a",
        "start b",
        "worker running",
        "worker cancelled",
        "stop b",
        "stop a",
    ]


async def test_a_failing_background_task_stops_serve_with_its_error(plain: App) -> None:
    stopped: list[str] = []

    async def crash() -> None:
        raise RuntimeError("model file is corrupt")

    async def down() -> None:
        stopped.append("channel")

    async def up() -> None:
        return None

    with pytest.raises(CxbotError, match="background task sentiment failed: model file is corrupt"):
        await serve(
            plain,
            services=[Service(name="channel", start=up, stop=down)],
            tasks=[BackgroundTask(name="sentiment", run=crash)],
        )
    assert stopped == ["channel"]


async def test_a_service_that_fails_to_start_is_stopped_and_reported(plain: App) -> None:
    stopped: list[str] = []

    async def up() -> None:
        raise CxbotError("getMe: Telegram rejected the bot token")

    async def down() -> None:
        stopped.append("telegram")

    with pytest.raises(CxbotError, match="rejected the bot token"):
        await serve(plain, services=[Service(name="telegram", start=up, stop=down)])
    assert stopped == ["telegram"]


async def test_telegram_polling_runs_under_serve(tmp_path: Path) -> None:
    with FakeTelegramAPI() as fake:
        app = build_app(telegram_settings(fake, tmp_path, server__port="0"))
        try:
            task, stop, serving = await start(app)
            assert serving.channels == ("telegram (polling)",)
            assert [c.method for c in fake.requests()][:2] == ["getMe", "deleteWebhook"]
            fake.send_text(42, "/start")
            await fake.wait_texts(42, 2)
            stop.set()
            await asyncio.wait_for(task, timeout=5)
            assert fake.pending_updates() == 0  # the last offset was confirmed on the way out
        finally:
            app.close()


def test_the_command_serves_until_sigterm(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "cxbot"
    env = {
        **os.environ,
        "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "d"),
        "CXBOT_SERVER__PORT": "0",
        "CXBOT_SENTIMENT__ENABLED": "false",
    }
    env.pop("CXBOT_TELEGRAM__TOKEN", None)
    proc = subprocess.Popen(
        [str(exe), "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = ""
        for line in proc.stderr:
            if "serving only" in line:
                break
        assert "no chat channel is configured (set [telegram] token" in line
        url = line.rsplit(" ", 1)[1].strip()
        assert httpx.get(url, timeout=5).json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
        assert proc.returncode == 0, rest
        assert "cxbot: stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_command_reports_a_wrong_token(tmp_path: Path) -> None:
    with FakeTelegramAPI() as fake:
        exe = Path(sys.executable).parent / "cxbot"
        env = {
            **os.environ,
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "d"),
            "CXBOT_SERVER__PORT": "0",
            "CXBOT_SENTIMENT__ENABLED": "false",
            "CXBOT_TELEGRAM__TOKEN": "999:not-the-right-token",
            "CXBOT_TELEGRAM__BASE_URL": fake.base_url,
        }
        run = subprocess.run(
            [str(exe), "serve"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 1
    assert "cxbot: error: getMe: Telegram rejected the bot token" in run.stderr


async def test_messages_queued_while_serve_was_down_are_sent_when_it_runs(
    tmp_path: Path,
) -> None:
    with FakeTelegramAPI() as fake:
        fake.known_chats.add(42)  # the customer has started the bot before
        settings = telegram_settings(fake, tmp_path, server__port="0")
        app = build_app(settings)
        try:
            await app.engine.begin(channel="telegram", user_id="42")  # queued in the outbox
        finally:
            app.close()
        assert fake.requests("sendMessage") == []
        async with running(settings):
            _intro, question = await fake.wait_texts(42, 2)
        assert question.startswith("How likely are you to recommend us")


def test_without_channels_no_inbox_or_delivery_worker_runs(plain: App) -> None:
    from bot.serve import plan_channels

    assert [t.name for t in plan_channels(plain).tasks] == []


def test_delivery_settings_reach_the_delivery_worker(tmp_path: Path) -> None:
    from bot.serve import plan_channels

    with FakeTelegramAPI() as fake:
        settings = telegram_settings(
            fake, tmp_path, delivery__max_in_flight="4", delivery__lease_seconds="300"
        )
        app = build_app(settings)
        try:
            worker = plan_channels(app).delivery
            assert worker is not None
            assert (worker.max_in_flight, worker.lease.total_seconds()) == (4, 300.0)
        finally:
            app.close()


def test_the_reminder_worker_runs_beside_the_channels_unless_turned_off(tmp_path: Path) -> None:
    from bot.serve import plan_channels

    with FakeTelegramAPI() as fake:
        for extra, expected in (
            ({}, True),
            ({"reminders__count": "0"}, True),  # surveys still expire
            ({"reminders__count": "0", "reminders__expire_after_hours": "0"}, False),
        ):
            app = build_app(telegram_settings(fake, tmp_path, **extra))
            try:
                names = [t.name for t in plan_channels(app).tasks]
                assert ("reminders" in names) == expected, extra
            finally:
                app.close()


async def test_serve_sends_a_reminder_that_fell_due_while_it_was_down(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.engine import Engine

    with FakeTelegramAPI() as fake:
        fake.known_chats.add(42)
        settings = telegram_settings(fake, tmp_path, server__port="0")
        app = build_app(settings)
        a_day_ago = datetime.now(UTC) - timedelta(hours=25)
        engine = Engine(db=app.db, catalog=app.catalog, settings=settings, clock=lambda: a_day_ago)
        try:
            await engine.begin(channel="telegram", user_id="42")  # asked 25 hours ago
        finally:
            app.close()
        async with running(settings):
            texts = await fake.wait_texts(42, 3)
        assert texts[2].startswith("Reminder: How likely are you to recommend us")
