"""`cxbot customers erase|export` as users call them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.messages import IncomingMessage
from tests.fakes.cli_runner import Run, cli_runner


@pytest.fixture
def cxbot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")

    return cli_runner(capsys)


def _answer_survey(user: str) -> None:
    app = build_app(load_settings())

    async def survey() -> None:
        await app.engine.begin(channel="telegram", user_id=user, first_name="Zelda")
        for text in ["4", "the courier was rude", "2", "1", "no"]:
            await app.engine.handle(IncomingMessage(channel="telegram", user_id=user, text=text))

    try:
        asyncio.run(survey())
    finally:
        app.close()


def test_export_then_erase_from_the_command_line(cxbot: Run) -> None:
    _answer_survey("42")
    code, out, _ = cxbot("customers", "export", "telegram:42")
    data = json.loads(out)
    assert code == 0 and data["customer"]["first_name"] == "Zelda"
    assert "the courier was rude" in [a["raw_text"] for a in data["answers"]]

    code, out, _ = cxbot("customers", "erase", "telegram:42")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "erased telegram:42; rows changed per table:"
    assert "  customer         1" in lines
    assert lines[-1] == "telegram:42 added to the suppression list: never invited again"
    assert cxbot("suppress", "list")[1].startswith("telegram:42 ")
    # The person is gone: an export finds no one, a second erase has nothing left to do.
    assert cxbot("customers", "export", "telegram:42") == (
        1,
        "",
        "cxbot: error: no customer telegram:42 is stored",
    )
    code, out, err = cxbot("customers", "erase", "telegram:42")
    assert (code, err) == (0, "nothing stored about telegram:42")
    assert out == "telegram:42 already on the suppression list: never invited again"
    code, out, _ = cxbot("report", "--json")  # the anonymous scores still count
    assert code == 0 and json.loads(out)["nps"]["detractors"] == 1


def test_a_malformed_customer_is_one_clear_error(cxbot: Run) -> None:
    code, out, err = cxbot("customers", "erase", "telegram:bob")
    assert (code, out) == (1, "")
    assert err == "cxbot: error: a Telegram user id is the numeric chat id, not 'bob'"
