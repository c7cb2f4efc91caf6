"""`cxbot users` as people and scripts call it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import App, build_app
from bot.config import load_settings
from bot.desk_users import DeskAccount, SignInRefused, authenticate, session_account
from storage.database import transaction
from storage.tables import DeskUser
from tests.fakes.cli_runner import Run, cli_runner

PASSWORD = "correct horse battery"


class Terminal(io.StringIO):
    """Standard input that is a terminal (its text must never be read: getpass asks)."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1, /) -> str:
        raise AssertionError("a terminal's password is asked for with getpass, not read")


@pytest.fixture
def cxbot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    return cli_runner(capsys)


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Piped standard input; tests write the lines before running the command."""
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stdin", piped)
    yield piped


def _pipe(stdin: io.StringIO, text: str) -> None:
    stdin.seek(0)
    stdin.truncate()
    stdin.write(text)
    stdin.seek(0)


def _app() -> App:
    return build_app(load_settings())


def _sign_in(email: str, password: str) -> DeskAccount | SignInRefused:
    app = _app()
    try:
        return authenticate(app.db, email=email, password=password)
    finally:
        app.close()


def _rows() -> list[tuple[str, str, bool, int]]:
    app = _app()
    try:
        with transaction(app.db) as s:
            return [
                (u.email, u.role, u.disabled_at is not None, u.session_epoch)
                for u in s.exec(select(DeskUser).order_by(col(DeskUser.email)))
            ]
    finally:
        app.close()


def test_add_reads_the_first_line_of_piped_input_as_the_password(
    cxbot: Run, stdin: io.StringIO, tmp_path: Path
) -> None:
    _pipe(stdin, f"{PASSWORD}\nnot part of it\n")
    code, out, err = cxbot("users", "add", "Ana@Example.com", "--role", "admin")
    assert (code, err) == (0, "")
    assert out == "added desk user ana@example.com (admin); they sign in at /desk/login"
    assert _rows() == [("ana@example.com", "admin", False, 0)]
    assert isinstance(_sign_in("ana@example.com", PASSWORD), DeskAccount)
    assert _sign_in("ana@example.com", PASSWORD + "\n") is SignInRefused.WRONG
    assert PASSWORD.encode() not in (tmp_path / "data" / "cxbot.db").read_bytes()
    # A Windows line ending is not part of the password either; no line ending at all is fine.
    _pipe(stdin, f"{PASSWORD}\r\n")
    assert cxbot("users", "add", "bob@example.com", "--role", "support")[0] == 0
    _pipe(stdin, PASSWORD)
    assert cxbot("users", "add", "cy@example.com", "--role", "support")[0] == 0
    assert isinstance(_sign_in("bob@example.com", PASSWORD), DeskAccount)
    assert isinstance(_sign_in("cy@example.com", PASSWORD), DeskAccount)


def test_at_a_terminal_the_password_is_asked_twice_and_must_match(
    cxbot: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "a different one"])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", ask)
    assert cxbot("users", "add", "ana@example.com", "--role", "support")[0] == 0
    assert prompts == ["New password (at least 8 characters): ", "Repeat it: "]
    assert isinstance(_sign_in("ana@example.com", PASSWORD), DeskAccount)
    code, out, err = cxbot("users", "add", "bob@example.com", "--role", "support")
    assert (code, out) == (1, "")
    assert err == "cxbot: error: the two passwords differ; nothing was changed"
    assert [r[0] for r in _rows()] == ["ana@example.com"]


@pytest.mark.parametrize(
    ("args", "piped", "message"),
    [
        (["ana@example.com"], PASSWORD, "there is already a desk user ana@example.com"),
        (["ANA@example.com"], PASSWORD, "there is already a desk user ana@example.com"),
        (["bob@example.com"], "short\n", "the password is too short: at least 8 characters"),
        (["bob@example.com"], "", "no password on standard input: pipe it in as the first line"),
        (["bob@example.com"], "\nsecond line\n", "no password on standard input"),
        (["bob"], PASSWORD, "'bob' is not an e-mail address (like ana@example.com)"),
    ],
)
def test_bad_adds_exit_1_with_a_clear_message_and_change_nothing(
    cxbot: Run, stdin: io.StringIO, args: list[str], piped: str, message: str
) -> None:
    _pipe(stdin, PASSWORD)
    assert cxbot("users", "add", "ana@example.com", "--role", "admin")[0] == 0
    before = _rows()
    _pipe(stdin, piped)
    code, out, err = cxbot("users", "add", *args, "--role", "support")
    assert (code, out) == (1, "")
    assert err.startswith(f"cxbot: error: {message}")
    assert _rows() == before


def test_an_unknown_role_is_a_usage_error(cxbot: Run, stdin: io.StringIO) -> None:
    _pipe(stdin, PASSWORD)
    with pytest.raises(SystemExit) as exited:
        cxbot("users", "add", "ana@example.com", "--role", "boss")
    assert exited.value.code == 2
    assert _rows() == []


def test_list_shows_each_user_and_never_a_password_hash(cxbot: Run, stdin: io.StringIO) -> None:
    code, out, err = cxbot("users", "list")
    assert (code, out, err) == (0, "", "no desk users (cxbot users add EMAIL --role admin)")
    assert cxbot("users", "list", "--json")[:2] == (0, '{"users": []}')
    for email, role in (("zoe@example.com", "admin"), ("ana@example.com", "support")):
        _pipe(stdin, PASSWORD)
        cxbot("users", "add", email, "--role", role)
    _sign_in("zoe@example.com", PASSWORD)
    cxbot("users", "disable", "ana@example.com")

    code, out, _ = cxbot("users", "list")
    assert code == 0
    header, ana, zoe = out.splitlines()
    assert header.split() == ["EMAIL", "ROLE", "STATE", "CREATED", "(UTC)", "LAST", "SIGN-IN"]
    assert ana.split()[:3] == ["ana@example.com", "support", "disabled"]
    assert ana.split()[-1] == "-"
    assert zoe.split()[:3] == ["zoe@example.com", "admin", "active"]
    assert len(zoe.split()) == 7  # two dates of two words: created and last sign-in
    assert "argon2" not in out

    code, out, _ = cxbot("users", "list", "--json")
    users = json.loads(out)["users"]
    assert [(u["email"], u["role"], u["disabled"]) for u in users] == [
        ("ana@example.com", "support", True),
        ("zoe@example.com", "admin", False),
    ]
    assert users[0]["last_login_at"] is None and users[1]["last_login_at"].endswith("+00:00")
    assert set(users[0]) == {"email", "role", "disabled", "created_at", "last_login_at"}


def test_disable_ends_sessions_and_enable_lets_the_user_in_again(
    cxbot: Run, stdin: io.StringIO
) -> None:
    _pipe(stdin, PASSWORD)
    cxbot("users", "add", "ana@example.com", "--role", "support")
    signed = _sign_in("ana@example.com", PASSWORD)
    assert isinstance(signed, DeskAccount)

    assert cxbot("users", "disable", "Ana@example.com") == (
        0,
        "disabled desk user ana@example.com: they cannot sign in, their sessions have ended",
        "",
    )
    assert _sign_in("ana@example.com", PASSWORD) is SignInRefused.DISABLED
    app = _app()
    try:
        assert session_account(app.db, user_id=signed.id, epoch=signed.session_epoch) is None
    finally:
        app.close()

    assert cxbot("users", "enable", "ana@example.com") == (
        0,
        "enabled desk user ana@example.com: they can sign in again",
        "",
    )
    assert isinstance(_sign_in("ana@example.com", PASSWORD), DeskAccount)


def test_reset_sets_a_new_password_from_piped_input_and_ends_sessions(
    cxbot: Run, stdin: io.StringIO
) -> None:
    _pipe(stdin, PASSWORD)
    cxbot("users", "add", "ana@example.com", "--role", "admin")
    _pipe(stdin, "a new passphrase\n")
    assert cxbot("users", "reset", "ana@example.com") == (
        0,
        "new password set for ana@example.com; their sessions have ended",
        "",
    )
    assert _sign_in("ana@example.com", PASSWORD) is SignInRefused.WRONG
    signed = _sign_in("ana@example.com", "a new passphrase")
    assert isinstance(signed, DeskAccount) and signed.session_epoch == 1

    _pipe(stdin, "tiny\n")
    code, _, err = cxbot("users", "reset", "ana@example.com")
    assert (code, err) == (1, "cxbot: error: the password is too short: at least 8 characters")
    assert isinstance(_sign_in("ana@example.com", "a new passphrase"), DeskAccount)


@pytest.mark.parametrize("action", ["disable", "enable", "reset"])
def test_changes_to_an_unknown_user_exit_1_and_change_nothing(
    cxbot: Run, stdin: io.StringIO, action: str
) -> None:
    _pipe(stdin, PASSWORD)
    cxbot("users", "add", "ana@example.com", "--role", "admin")
    before = _rows()
    _pipe(stdin, "another password\n")
    code, out, err = cxbot("users", action, "bob@example.com")
    assert (code, out) == (1, "")
    assert err == "cxbot: error: no desk user 'bob@example.com' (cxbot users list shows them)"
    assert _rows() == before
    # Nothing was read for a user who is not there.
    assert stdin.read() == "another password\n"


def test_the_installed_command_takes_the_password_on_standard_input(tmp_path: Path) -> None:
    """The contract as scripts use it: `printf PASSWORD | cxbot users add EMAIL --role R`."""
    exe = Path(sys.executable).parent / "cxbot"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CXBOT_")},
        "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "d"),
        "CXBOT_SENTIMENT__ENABLED": "false",
    }
    run = subprocess.run(
        [str(exe), "users", "add", "ana@example.com", "--role", "support"],
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == "added desk user ana@example.com (support); they sign in at /desk/login\n"
    settings = load_settings(None, environ={"CXBOT_GENERAL__DATA_DIR": str(tmp_path / "d")})
    app = build_app(settings)
    try:
        signed = authenticate(app.db, email="ana@example.com", password=PASSWORD)
    finally:
        app.close()
    assert isinstance(signed, DeskAccount) and signed.role == "support"
