"""`cxbot doctor` against the loopback fakes: what it finds, how it says so, its exit status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings
from bot.doctor import diagnose
from storage.database import open_database
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.telegram_api import FakeTelegramAPI


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A migrated SQLite database, no channels and the model off (set per test)."""
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    open_database(f"sqlite:///{tmp_path / 'data' / 'cxbot.db'}").dispose()
    return monkeypatch


@pytest.fixture
def telegram() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake


def run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor"])
    return code, capsys.readouterr().out


def test_all_well_with_both_channels(
    env: pytest.MonkeyPatch,
    telegram: FakeTelegramAPI,
    slack: FakeSlackAPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env.setenv("CXBOT_TELEGRAM__TOKEN", telegram.token)
    env.setenv("CXBOT_TELEGRAM__BASE_URL", telegram.base_url)
    env.setenv("CXBOT_SLACK__BOT_TOKEN", slack.token)
    env.setenv("CXBOT_SLACK__BASE_URL", slack.base_url)
    env.setenv("CXBOT_SLACK__APP_TOKEN", slack.app_token)
    slack.socket_url = "ws://127.0.0.1:9/socket"  # handed out, never connected to
    code, out = run(capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "ok    configuration: valid (defaults and environment)"
    assert lines[1].startswith("ok    database: reachable, schema at the newest migration")
    assert lines[2] == "skip  sentiment model: [sentiment] enabled = false"
    assert lines[3].startswith("ok    telegram: token accepted: @")
    assert lines[4].startswith("ok    slack: bot token accepted:")
    assert lines[5] == "ok    slack app token: Socket Mode connection allowed"
    assert lines[-1] == "all checks passed"
    assert [c.method for c in telegram.requests()] == ["getMe"]
    assert [c.method for c in slack.requests()] == ["auth.test", "apps.connections.open"]


def test_wrong_tokens_are_named_with_a_fix_and_never_printed(
    env: pytest.MonkeyPatch,
    telegram: FakeTelegramAPI,
    slack: FakeSlackAPI,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong_telegram, wrong_slack = "999:WrongTokenNotTheFakes", "xoxb-9-9-WrongToken"
    env.setenv("CXBOT_TELEGRAM__TOKEN", wrong_telegram)
    env.setenv("CXBOT_TELEGRAM__BASE_URL", telegram.base_url)
    env.setenv("CXBOT_SLACK__BOT_TOKEN", wrong_slack)
    env.setenv("CXBOT_SLACK__BASE_URL", slack.base_url)
    env.setenv("CXBOT_SLACK__APP_TOKEN", "xapp-1-A9-9-WrongAppToken")
    code, out = run(capsys)
    assert code == 1
    assert "FAIL  telegram: " in out and "refused the token (401)" in out
    assert "fix: set [telegram] token to the token @BotFather gave you" in out
    assert "FAIL  slack: auth.test refused the bot token: invalid_auth" in out
    assert "fix: set [slack] bot_token" in out
    assert "FAIL  slack app token: apps.connections.open refused the app token" in out
    assert wrong_telegram not in out and wrong_slack not in out and "WrongAppToken" not in out
    assert out.splitlines()[-1] == "3 check(s) failed"


def test_an_unreachable_endpoint_is_reported(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeTelegramAPI() as gone:
        base_url = gone.base_url  # nothing listens there once the fake stopped
    env.setenv("CXBOT_TELEGRAM__TOKEN", gone.token)
    env.setenv("CXBOT_TELEGRAM__BASE_URL", base_url)
    code, out = run(capsys)
    assert code == 1
    assert f"FAIL  telegram: cannot reach {base_url}…/getMe: ConnectError" in out
    assert gone.token not in out


def test_a_database_not_yet_migrated_or_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    monkeypatch.setenv("CXBOT_DATABASE__URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    code, out = run(capsys)
    assert code == 1
    assert "FAIL  database: reachable, but no cxbot tables yet" in out
    monkeypatch.setenv("CXBOT_DATABASE__URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, out = run(capsys)
    assert code == 1
    assert "FAIL  database: database postgresql+psycopg://nobody@127.0.0.1:1/none" in out
    assert "fix: start the database server or correct [database] url" in out


def test_a_bad_configuration_stops_the_other_checks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CXBOT_SERVER__PORT", "99999")
    code, out = run(capsys)
    assert code == 1
    assert out.startswith("FAIL  configuration: invalid configuration:")
    assert "fix: correct the keys named above" in out
    assert "database" not in out


def test_the_model_check_reports_a_load_failure(env: pytest.MonkeyPatch) -> None:
    env.setenv("CXBOT_SENTIMENT__ENABLED", "true")

    def broken(settings: Settings) -> object:
        raise OSError("no model files in /nowhere")

    findings = {f.name: f for f in diagnose(None, load_model=broken)}
    model = findings["sentiment model"]
    assert (model.ok, model.detail) == (
        False,
        "the shipped model does not load: no model files in /nowhere",
    )
    assert "[sentiment] model" in model.fix
    fine = {f.name: f for f in diagnose(None, load_model=lambda settings: object())}
    assert fine["sentiment model"].ok is True
