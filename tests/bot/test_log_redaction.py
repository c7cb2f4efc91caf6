"""Secrets never reach the logs or the database: the redaction itself, then real Telegram
(webhook, setWebhook) and Slack paths run at DEBUG with every captured record scanned."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel

from bot.app import App
from bot.config import Settings
from bot.log_redaction import (
    REDACTED,
    Redactor,
    SecretFilter,
    configured_secrets,
    install_redaction,
)
from storage.database import transaction
from tests.fakes.serving import running
from tests.fakes.slack_api import SIGNING_SECRET, FakeSlackAPI, dm_event
from tests.fakes.slack_setup import ann_profile, serving, slack_settings
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import telegram_settings

WEBHOOK_SECRET = "webhook_Secret-42-abcdef"


def _record(msg: str, *args: Any, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("httpx", logging.DEBUG, __file__, 1, msg, args, exc_info)


def test_configured_values_their_url_forms_and_secret_shapes_are_redacted() -> None:
    redactor = Redactor(["s3cret/value+1", "short"])
    assert redactor.redact("a s3cret/value+1 b s3cret%2Fvalue%2B1 short") == (
        f"a {REDACTED} b {REDACTED} short"
    )
    shaped = "bot123456789:AAFakeTokenForTestsOnly_abcdefghij/getMe xoxb-1-2-abcdefghijk cxk_" + (
        "A" * 43
    )
    assert redactor.redact(shaped) == f"bot{REDACTED}/getMe {REDACTED} {REDACTED}"
    assert redactor.redact("update 123456789: ok, 15:42") == "update 123456789: ok, 15:42"


def test_a_record_is_redacted_in_its_arguments_and_its_traceback() -> None:
    redactor = Redactor(["tok-en-12345"])
    record = _record("POST %s %d", "https://x/bottok-en-12345/send", 200)
    SecretFilter(redactor).filter(record)
    assert record.getMessage() == f"POST https://x/bot{REDACTED}/send 200"
    try:
        raise RuntimeError("failed for url https://x/bottok-en-12345/send")
    except RuntimeError as exc:
        failed = _record("send failed", exc=exc)
    redactor.redact_record(failed)
    text = logging.Formatter().format(failed)
    assert "tok-en-12345" not in text and f"https://x/bot{REDACTED}/send" in text


def _scan(caplog: pytest.LogCaptureFixture, app: App, secrets: list[str]) -> list[str]:
    """Every captured line (tracebacks included) and every stored row; none may hold a secret."""
    formatter = logging.Formatter("%(name)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    with transaction(app.db) as s:
        rows = [repr(s.execute(sa_select(t)).all()) for t in SQLModel.metadata.sorted_tables]
    for secret in secrets:
        assert not [line for line in lines if secret in line], f"{secret[:6]}… in the log"
        assert not [row for row in rows if secret in row], f"{secret[:6]}… in the database"
    return lines


def _install(settings: Settings) -> list[str]:
    secrets = configured_secrets(settings)
    install_redaction(secrets)  # as `configure_logging` does at every command's start
    return secrets


async def test_at_debug_the_telegram_token_and_webhook_secret_are_in_no_log_line(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    # The SDKs' own loggers too: an earlier command in this process may have quietened them.
    for name in ("httpx", "httpcore", "telegram", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    with FakeTelegramAPI() as fake:
        settings = telegram_settings(
            fake,
            tmp_path,
            telegram__mode="webhook",
            telegram__webhook_url="https://cx.example.com/telegram/webhook",
            telegram__secret_token=WEBHOOK_SECRET,
            server__port="0",
        )
        secrets = _install(settings)
        assert fake.token in secrets and WEBHOOK_SECRET in secrets
        async with running(settings) as (app, url):
            async with httpx.AsyncClient() as http:
                update = fake.stamp(fake.message(42, "/start"))
                headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
                answer = await http.post(f"{url}/telegram/webhook", json=update, headers=headers)
                assert answer.status_code == 200
                await fake.wait_texts(42, 2)
                # The Bot API through httpx (as `cxbot doctor` calls getMe): the token is in
                # the URL that httpx logs for every request.
                me = await http.get(f"{fake.base_url}{fake.token}/getMe")
                assert me.status_code == 200
            assert fake.requests("setWebhook")  # the call whose parameters hold the secret
            lines = _scan(caplog, app, secrets)
    # The scan saw the lines that would have held them: httpx's request lines, PTB's setWebhook.
    assert any("HTTP Request" in line and f"bot{REDACTED}/" in line for line in lines)
    assert any(f"'secret_token': '{REDACTED}'" in line for line in lines)


async def test_at_debug_the_slack_tokens_and_signing_secret_are_in_no_log_line(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "slack_bolt", "slack_sdk", "aiohttp"):
        caplog.set_level(logging.DEBUG, logger=name)
    with FakeSlackAPI() as fake:
        fake.profiles["U0ANN0001"] = ann_profile("U0ANN0001")
        settings = slack_settings(fake, tmp_path)
        secrets = _install(settings)
        assert fake.token in secrets and SIGNING_SECRET in secrets
        async with serving(settings) as served:
            assert (await served.event(dm_event("U0ANN0001", "start"))).status_code == 200
            assert fake.requests("chat.postMessage")
            lines = _scan(caplog, served.app, secrets)
    assert any("chat.postMessage" in line for line in lines)
