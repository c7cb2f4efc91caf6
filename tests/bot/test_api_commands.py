"""`cxbot apikeys` and `cxbot suppress` as users call them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.api_keys import KeyChecker, KeyRefused, hash_key
from bot.app import build_app
from bot.config import load_settings
from storage.database import transaction
from storage.tables import ApiKey
from tests.fakes.cli_runner import Run, cli_runner


@pytest.fixture
def cxbot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")

    return cli_runner(capsys)


def check(key: str) -> ApiKey | None:
    app = build_app(load_settings())
    try:
        try:
            found = KeyChecker(app.db).check_sync(key)
        except KeyRefused:
            return None
        with transaction(app.db) as s:
            return s.get(ApiKey, found.id)
    finally:
        app.close()


def test_a_new_key_is_printed_once_alone_on_the_last_line_and_only_its_hash_is_kept(
    cxbot: Run, tmp_path: Path
) -> None:
    code, out, _ = cxbot("apikeys", "create", "--scope", "invite", "--name", "helpdesk")
    assert code == 0
    key = out.splitlines()[-1]
    assert re.fullmatch(r"cxk_[A-Za-z0-9_-]{43}", key)
    assert out.splitlines()[0].startswith(
        f"created API key 'helpdesk' (scope invite, prefix {key[:12]})"
    )
    row = check(key)
    assert row is not None and (row.name, row.scope, row.prefix) == ("helpdesk", "invite", key[:12])
    assert row.key_hash == hash_key(key) and key not in row.key_hash
    assert key.encode() not in (tmp_path / "data" / "cxbot.db").read_bytes()


def test_keys_are_listed_without_their_secret_and_revoked_by_name_or_prefix(cxbot: Run) -> None:
    helpdesk = cxbot("apikeys", "create", "--scope", "invite", "--name", "helpdesk")[1]
    admin = cxbot("apikeys", "create", "--scope", "admin")[1].splitlines()[-1]
    helpdesk_key = helpdesk.splitlines()[-1]
    code, out, _ = cxbot("apikeys", "list")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == [
        "NAME",
        "PREFIX",
        "SCOPE",
        "CREATED",
        "(UTC)",
        "LAST",
        "USED",
        "REVOKED",
    ]
    assert first.split()[:3] == ["helpdesk", helpdesk_key[:12], "invite"]
    assert second.split()[:3] == [f"key-{admin[4:12]}", admin[:12], "admin"]
    assert helpdesk_key not in out and admin not in out

    assert cxbot("apikeys", "revoke", admin[:12]) == (
        0,
        f"revoked API key 'key-{admin[4:12]}' ({admin[:12]})",
        "",
    )
    assert check(admin) is None
    assert cxbot("apikeys", "revoke", "helpdesk")[0] == 0
    assert check(helpdesk_key) is None
    code, _, err = cxbot("apikeys", "revoke", "helpdesk")
    assert (code, err) == (1, "cxbot: error: no active API key with prefix or name 'helpdesk'")
    for line in cxbot("apikeys", "list")[1].splitlines()[1:]:  # both shown as revoked now
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d$", line), line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "root"], "invalid choice: 'root'"),
        (["--scope", "invite", "--name", "cli"], "reserved"),
        (["--scope", "invite", "--name", "two words"], "key name 'two words'"),
    ],
)
def test_bad_key_arguments_are_refused(
    cxbot: Run, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, _, err = cxbot("apikeys", "create", *args)
    except SystemExit as exc:  # argparse's own refusal
        code, err = int(exc.code or 0), capsys.readouterr().err
        assert code == 2
    else:
        assert code == 1
    assert message in err


def test_the_suppression_list_from_the_command_line(cxbot: Run) -> None:
    assert cxbot("suppress", "add", "telegram:42", "--note", "asked by phone") == (
        0,
        "suppressed telegram:42: no invitation will reach them",
        "",
    )
    code, out, _ = cxbot("suppress", "add", "telegram:42")
    assert code == 0 and out.startswith("telegram:42 was already suppressed since ")
    assert cxbot("suppress", "add", "slack:U0ANN0001")[0] == 0
    code, out, _ = cxbot("suppress", "list")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["telegram:42", "slack:U0ANN0001"]
    assert lines[0].endswith("cli  asked by phone")
    assert cxbot("suppress", "list", "--channel", "slack")[1].startswith("slack:U0ANN0001")
    assert cxbot("suppress", "remove", "telegram:42") == (
        0,
        "removed telegram:42 from the suppression list",
        "",
    )
    code, _, err = cxbot("suppress", "remove", "telegram:42")
    assert (code, err) == (1, "cxbot: error: telegram:42 is not on the suppression list")


@pytest.mark.parametrize(
    ("customer", "message"),
    [
        ("42", "expected CHANNEL:ID (e.g. telegram:123456789), not '42'"),
        ("email:bob", "unknown channel 'email'; use telegram or slack"),
        ("slack:bob", "a Slack user id is like U012ABCDEF, not 'bob'"),
        ("telegram:bob", "a Telegram user id is the numeric chat id, not 'bob'"),
    ],
)
def test_a_malformed_customer_is_refused(cxbot: Run, customer: str, message: str) -> None:
    code, _, err = cxbot("suppress", "add", customer)
    assert (code, err) == (1, f"cxbot: error: {message}")
    assert cxbot("suppress", "list")[1] == ""
