"""The `cxbot` command as users call it: exit codes, standard output, stored results."""

from __future__ import annotations

import getpass
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(path))
    # The real model is exercised by the end-to-end test below and by tests/nlp.
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    return path


@pytest.fixture
def chat(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """Run `cxbot chat ARGS` with these lines as standard input; (exit code, stdout)."""

    def run(lines: str, *args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
        capsys.readouterr()
        code = main(["chat", *args])
        return code, capsys.readouterr().out

    return run


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["report", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_piped_chat_completes_the_default_flow_and_report_counts_it(
    data_dir: Path, chat: Callable[..., tuple[int, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = chat("9\nGreat support, thanks!\n6\n5\n\n")
    assert code == 0
    assert out.splitlines()[1] == "How likely are you to recommend us to a friend or colleague?"
    assert "Great to hear! What did you like most?" in out
    assert out.rstrip().endswith(f"Thank you for your feedback, {getpass.getuser()}!")
    assert (data_dir / "cxbot.db").exists()
    report = report_json(capsys)
    assert report["nps"] == {"score": 100.0, "promoters": 1, "passives": 0, "detractors": 0, "n": 1}
    assert report["ces"] == {"mean": 6.0, "n": 1}
    assert report["csat"] == {"score": 100.0, "satisfied": 1, "n": 1}


def test_report_breaks_down_by_flow_and_filters(
    data_dir: Path, chat: Callable[..., tuple[int, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    chat("3\n\n2\n1\n\n", "--customer", "a")
    chat("yes\n1\n4\n10\n", "--customer", "b", "--flow", "post_purchase")
    report = report_json(capsys)
    assert report["nps"]["n"] == 2 and report["nps"]["score"] == 0.0  # type: ignore[index]
    assert set(report["by_flow"]) == {"post_interaction", "post_purchase"}  # type: ignore[arg-type]
    assert report["csat"] == {"score": 50.0, "satisfied": 1, "n": 2}
    only = report_json(capsys, "--flow", "post_purchase")
    assert only["nps"]["detractors"] == 0 and only["nps"]["n"] == 1  # type: ignore[index]
    assert main(["report"]) == 0
    table = capsys.readouterr().out
    assert "flow: post_purchase" in table and "channel: console" in table


def test_empty_database_reports_nulls(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = report_json(capsys)
    assert report["nps"] == {"score": None, "promoters": 0, "passives": 0, "detractors": 0, "n": 0}


def test_chat_context_reaches_the_texts(
    data_dir: Path, chat: Callable[..., tuple[int, str]]
) -> None:
    code, out = chat("", "--flow", "post_purchase", "--context", "order_id=order A-1001")
    assert code == 0
    assert "A few quick questions about order A-1001." in out


def test_unknown_flow_is_one_clear_error(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("9\n"))
    assert main(["chat", "--flow", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "cxbot: error: unknown flow 'nope'; known flows: post_interaction, post_purchase"
    )


def test_report_of_an_unknown_flow_is_one_clear_error(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["report", "--flow", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "cxbot: error: unknown flow 'nope'; known flows: post_interaction, post_purchase"
    )


def test_chat_greets_by_login_name_by_default(
    data_dir: Path, chat: Callable[..., tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "ana")
    _, out = chat("")
    assert out.startswith("Hi ana!")
    _, out = chat("", "--customer", "Bea")
    assert out.startswith("Hi Bea!")


def test_missing_config_file_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--config", "/nonexistent/cxbot.toml"]) == 1
    assert capsys.readouterr().err.strip() == (
        "cxbot: error: config file /nonexistent/cxbot.toml does not exist"
    )


def test_unreachable_database_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CXBOT_DATABASE__URL", "postgresql+psycopg://cxbot@127.0.0.1:1/cxbot")
    assert main(["report"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cxbot: error: cannot reach or migrate the database postgresql")
    assert err.count("\n") == 1


def test_bad_context_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "--context", "no-equals-sign"])
    assert exit_info.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_flows_validate_reports_path_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flows", "validate", *map(str, sorted((REPO / "flows").glob("*.toml")))]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nname = "X"\n[[questions]]\nid = "q"\ntype = "rating"\ntext = "?"\n')
    capsys.readouterr()
    assert main(["flows", "validate", str(bad)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{bad}:5: ")
    assert "unknown question type 'rating'" in out[0]


def test_flows_validate_warns_of_a_language_without_bot_texts_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fr.toml"
    path.write_text(
        'id = "x"\nname = "X"\nlocales = ["en", "fr"]\n'
        '[[questions]]\nid = "q"\ntype = "nps"\ntext = "?"\n'
    )
    capsys.readouterr()
    assert main(["flows", "validate", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{path}:3: warning: the bot's own words")


def test_flows_list_marks_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("* post_interaction")
    assert lines[1].startswith("  post_purchase")


def test_installed_console_script_end_to_end(tmp_path: Path) -> None:
    """The real `cxbot` executable, as the README and the acceptance check run it."""
    exe = Path(sys.executable).parent / "cxbot"
    env = {**os.environ, "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "d")}
    chat_run = subprocess.run(
        [str(exe), "chat"],
        input="9\nGreat support, thanks!\n6\n5\n\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert chat_run.returncode == 0, chat_run.stderr
    assert "Thank you for your feedback" in chat_run.stdout
    report_run = subprocess.run(
        [str(exe), "report", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    assert json.loads(report_run.stdout)["nps"]["promoters"] == 1
