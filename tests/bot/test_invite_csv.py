"""`cxbot invite --csv FILE`: bulk invitations through the same service as the API, one
transaction a row, a result file naming each refused row's column, idempotent re-runs, and
files that cannot be read refused before anything is stored — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.app import App, build_app
from bot.cli import main
from bot.config import load_settings
from bot.invitations.suppression import SuppressionList
from bot.progress import LineProgress, progress_for
from storage.database import transaction
from storage.tables import Conversation, Customer, Invitation, OutboxMessage
from tests.fakes.cli_runner import Run, cli_runner
from tests.fakes.telegram_api import FakeTelegramAPI

HEADER = (
    "channel,user_id,touchpoint,interaction_id,flow_id,send_after,time_zone,"
    "order_id,context.channel\n"
)


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeTelegramAPI, database_url: str
) -> None:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_DATABASE__URL", database_url)
    monkeypatch.setenv("CXBOT_TELEGRAM__TOKEN", fake.token)
    monkeypatch.setenv("CXBOT_TELEGRAM__BASE_URL", fake.base_url)
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")


@pytest.fixture
def cxbot(env: None, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `cxbot ARGS`: (exit status, stdout, stderr)."""

    return cli_runner(capsys)


@pytest.fixture
def app(env: None) -> Iterator[App]:
    """The app on the command's database, to look at what it stored."""
    application = build_app(load_settings())
    yield application
    application.close()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def invitations(app: App) -> list[Invitation]:
    with transaction(app.db) as s:
        return list(s.exec(select(Invitation).order_by(col(Invitation.id))))


def count(app: App, table: type[Customer] | type[Conversation] | type[OutboxMessage]) -> int:
    with transaction(app.db) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def test_good_rows_are_invited_through_the_rules_and_left_for_serve_to_deliver(
    cxbot: Run, app: App, fake: FakeTelegramAPI, tmp_path: Path
) -> None:
    SuppressionList(app.db).add("telegram", "1004", by="test")
    source = write(
        tmp_path / "invites.csv",
        HEADER
        + "telegram,1001,purchase,order-1,post_purchase,,,A-1,web\n"
        + "telegram,1002,support_contact,ticket-2,,3600,Europe/Berlin,,\n"
        + "telegram,1001,refund,refund-3,,,,A-1,\n"  # the same customer again: cooldown
        + "\n"  # a blank line is skipped (and counted, as a spreadsheet does)
        + "telegram,1004,purchase,order-5,,,,,\n",
    )
    code, out, err = cxbot("invite", "--csv", str(source))
    assert code == 0
    assert out.splitlines() == [
        "4 rows: 1 sent, 1 scheduled, 2 withheld (cooldown 1, suppressed 1), 0 error",
        "1 survey(s) queued for delivery: `cxbot serve` sends them (this command sends nothing "
        "itself); 1 scheduled invitation(s): `cxbot serve` sends each at its time",
        f"results: {tmp_path / 'invites.results.csv'}",
    ]
    assert err.splitlines() == ["1/4 rows", "2/4 rows", "3/4 rows", "4/4 rows"]
    rows = invitations(app)
    assert [(r.source, r.interaction_id, r.status, r.reason) for r in rows] == [
        ("csv", "order-1", "sent", None),
        ("csv", "ticket-2", "scheduled", None),
        ("csv", "refund-3", "withheld", "cooldown"),
        ("csv", "order-5", "withheld", "suppressed"),
    ]
    # Other columns are context (a `context.` prefix is taken off); empty cells are left out.
    assert rows[0].context == {"order_id": "A-1", "channel": "web"}
    assert (rows[0].flow_id, rows[1].flow_id, rows[1].context) == (
        "post_purchase",
        "post_interaction",
        {},
    )
    assert abs((rows[1].send_at - rows[1].created_at).total_seconds() - 3600) < 1
    with transaction(app.db) as s:
        zone = s.exec(select(Customer.time_zone).where(Customer.external_id == "1002")).one()
        lanes = s.exec(select(OutboxMessage.lane, OutboxMessage.sent_at)).all()
    assert zone == "Europe/Berlin"
    # The survey's first messages wait in the outbox; the command itself called no platform.
    assert lanes == [("telegram:1001", None), ("telegram:1001", None)]
    assert fake.requests() == []
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert results(tmp_path / "invites.results.csv") == [
        {
            "row": "2",
            "interaction_id": "order-1",
            "status": "sent",
            "reason": "",
            "detail": "",
            "invitation_id": str(rows[0].id),
            "repeat": "no",
        },
        {
            "row": "3",
            "interaction_id": "ticket-2",
            "status": "scheduled",
            "reason": "",
            "detail": "",
            "invitation_id": str(rows[1].id),
            "repeat": "no",
        },
        {
            "row": "4",
            "interaction_id": "refund-3",
            "status": "withheld",
            "reason": "cooldown",
            "detail": f"was surveyed on {today}, within the quiet period "
            "([invitations] cooldown_days = 30)",
            "invitation_id": str(rows[2].id),
            "repeat": "no",
        },
        {
            "row": "6",
            "interaction_id": "order-5",
            "status": "withheld",
            "reason": "suppressed",
            "detail": "is on the suppression list",
            "invitation_id": str(rows[3].id),
            "repeat": "no",
        },
    ]


def test_broken_rows_are_refused_alone_and_the_result_file_says_why(
    cxbot: Run, app: App, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "broken.csv",
        HEADER
        + "telegram,alice,purchase,o-1,,,,,\n"  # not a chat id
        + "telegram,1002,birthday,o-2,,,,,\n"  # unknown touchpoint
        + "telegram,1003,,o-3,,,,,\n"  # empty required cell
        + "telegram,1004,purchase,o-4,,soon,,,\n"
        + "telegram,1005,purchase,o-5,,2020-01-01T09:00:00Z,,,\n"
        + "telegram,1006,purchase,o-6,nope,,,,\n"
        + "telegram,1007,purchase,o-7,,,Mars/Olympus,,\n"
        + "telegram,1008,purchase,o-8,,,,A-8\n"  # a cell short
        + f"telegram,1009,purchase,o-9,,,,{'x' * 300},\n"
        + "slack,U012ABCDEF,purchase,o-10,,,,,\n"  # Slack is not configured here
        + "telegram,1011,purchase,o-11,,,,,\n"  # good
        + "telegram,1012,purchase,o-11,,,,,\n",  # o-11 again, for someone else
    )
    code, out, _ = cxbot("invite", "--csv", str(source), "--result", str(tmp_path / "out.csv"))
    assert code == 2
    assert out.splitlines()[0] == (
        "12 rows: 1 sent, 0 scheduled, 0 withheld, 11 error (conflict 1, invalid 10)"
    )
    assert out.splitlines()[-1] == f"11 row(s) refused; see why in {tmp_path / 'out.csv'}"
    found = {
        r["row"]: (r["interaction_id"], r["status"], r["reason"], r["detail"])
        for r in results(tmp_path / "out.csv")
    }
    assert found["12"] == ("o-11", "sent", "", "")
    errors = {
        row: (reason, detail)
        for row, (_, status, reason, detail) in found.items()
        if status == "error"
    }
    assert errors["2"] == (
        "invalid",
        "user_id: a Telegram user id is the numeric chat id, not 'alice'",
    )
    assert errors["3"][1].startswith(
        "touchpoint: unknown touchpoint 'birthday'; known: first_visit"
    )
    assert errors["4"][1] == "touchpoint: is required; the cell is empty"
    assert errors["5"][1] == (
        "send_after: 'soon' is neither a number of seconds nor an ISO-8601 time "
        "(e.g. 3600 or 2026-12-01T09:30:00+01:00)"
    )
    assert errors["6"][1].startswith("send_after: 2020-01-01T09:00:00Z is in the past")
    assert errors["7"][1].startswith("flow_id: unknown flow 'nope'")
    assert errors["8"][1].startswith("time_zone: unknown time zone 'Mars/Olympus'")
    assert errors["9"][1] == (
        "row: has 8 cells but the header row has 9 columns (a missing or extra separator?)"
    )
    assert errors["10"][1] == "order_id: at most 256 characters"
    assert errors["11"][1] == (
        "channel: slack is not configured on this server (configured: telegram)"
    )
    assert errors["13"][0] == "conflict"
    assert errors["13"][1].startswith("interaction_id: interaction_id 'o-11' was already used")
    # A refused row left nothing behind: no invitation, no customer, no survey.
    assert [r.interaction_id for r in invitations(app)] == ["o-11"]
    assert (count(app, Customer), count(app, Conversation)) == (1, 1)


def test_importing_the_same_file_again_sends_nothing_twice(
    cxbot: Run, app: App, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "invites.csv",
        HEADER
        + "telegram,1001,purchase,order-1,,,,,\n"
        + "telegram,1002,purchase,order-2,,600,,,\n"
        + "telegram,1001,refund,refund-3,,,,,\n"
        + "telegram,oops,refund,refund-4,,,,,\n",
    )
    assert cxbot("invite", "--csv", str(source))[0] == 2
    first = results(tmp_path / "invites.results.csv")
    queued = count(app, OutboxMessage)
    code, out, _ = cxbot("invite", "--csv", str(source))
    assert code == 2  # the bad row is still bad
    assert out.splitlines()[0] == (
        "4 rows: 1 sent, 1 scheduled, 1 withheld (cooldown 1), 1 error (invalid 1); "
        "3 repeat(s) of earlier imports"
    )
    again = results(tmp_path / "invites.results.csv")
    assert [r["repeat"] for r in again] == ["yes", "yes", "yes", "no"]
    strip = [{k: v for k, v in r.items() if k != "repeat"} for r in again]
    assert strip == [{k: v for k, v in r.items() if k != "repeat"} for r in first]
    assert len(invitations(app)) == 3 and count(app, OutboxMessage) == queued
    # Another source's interaction ids are its own.
    code, out, _ = cxbot("invite", "--csv", str(source), "--source", "shop-export")
    assert out.splitlines()[0].startswith("4 rows: 0 sent, 1 scheduled, 2 withheld (cooldown 2)")
    assert {r.source for r in invitations(app)} == {"csv", "shop-export"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("empty.csv", b"", "empty.csv: no header row; the first row names the columns"),
        (
            "photo.csv",
            b"\x89PNG\r\n\x1a\n\x00\x00",
            "photo.csv: not a CSV file (it holds binary data)",
        ),
        (
            "latin1.csv",
            "channel,user_id,touchpoint,interaction_id\ntelegram,1,purchase,caf\xe9\n".encode(
                "latin-1"
            ),
            "latin1.csv: line 2: not UTF-8 text (save the file as CSV UTF-8)",
        ),
        (
            "header.csv",
            b"channel,user,touchpoint,interaction_id\ntelegram,1,purchase,i-1\n",
            "header.csv: the header row lacks the column(s) user_id (required: channel, "
            "user_id, touchpoint, interaction_id; found: channel, user, touchpoint, "
            "interaction_id)",
        ),
        (
            "twice.csv",
            b"channel,user_id,touchpoint,interaction_id,note,note\n",
            "twice.csv: column 'note' appears twice in the header row",
        ),
        (
            "clash.csv",
            b"channel,user_id,touchpoint,interaction_id,order,context.order\n",
            "clash.csv: two columns give the context field 'order'",
        ),
        (
            "quote.csv",
            b'channel,user_id,touchpoint,interaction_id\ntelegram,1,purchase,"i-1\n'
            b"telegram,2,purchase,i-2\n",
            "quote.csv: line 3: not valid CSV: unexpected end of data",
        ),
        (
            "data.json",
            b'{"channel": "telegram", "user_id": "1"}\n',
            "data.json: the header row lacks the column(s) channel, user_id, touchpoint, "
            "interaction_id",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(
    cxbot: Run,
    app: App,
    tmp_path: Path,
    name: str,
    content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = cxbot("invite", "--csv", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"cxbot: error: {tmp_path}/{message}"), err
    assert len(err.splitlines()) == 1
    assert invitations(app) == [] and count(app, Customer) == 0
    assert not list(tmp_path.glob("*.results.csv"))


def test_no_channel_or_a_result_file_over_the_input_is_refused(
    cxbot: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(tmp_path / "i.csv", HEADER + "telegram,1,purchase,o-1,,,,,\n")
    code, _, err = cxbot("invite", "--csv", str(source), "--result", str(source))
    assert (code, err) == (
        1,
        f"cxbot: error: {source}: the result file would overwrite the input; pick another",
    )
    code, _, err = cxbot("invite", "--csv", str(source), "--source", "bad source!")
    assert code == 1 and err.startswith("cxbot: error: --source 'bad source!': 1-64 letters")
    monkeypatch.delenv("CXBOT_TELEGRAM__TOKEN")
    code, _, err = cxbot("invite", "--csv", str(source))
    assert code == 1 and err.startswith("cxbot: error: no chat channel is configured")


def test_a_spreadsheets_semicolons_and_byte_order_mark_are_read(
    cxbot: Run, app: App, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "excel.csv",
        "channel;user_id;touchpoint;interaction_id;note\r\n"
        'telegram;1001;purchase;o-1;"two\r\nlines; and a semicolon"\r\n'
        "telegram;1002;purchase;o-2;\r\n",
        encoding="utf-8-sig",
    )
    code, out, _ = cxbot("invite", "--csv", str(source))
    assert (code, out.splitlines()[0]) == (0, "2 rows: 2 sent, 0 scheduled, 0 withheld, 0 error")
    first, second = invitations(app)
    assert first.context == {"note": "two\r\nlines; and a semicolon"} and second.context == {}
    # Row numbers count records, as a spreadsheet does, not lines.
    assert [r["row"] for r in results(tmp_path / "excel.results.csv")] == ["2", "3"]


def test_single_customer_invite_still_needs_channel_and_user(
    cxbot: Run, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["invite", "--user", "42"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --channel, --user" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["invite", "--csv", str(tmp_path / "i.csv"), "--channel", "telegram"])
    assert "--csv takes every invitation from the file; --channel" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["invite", "--channel", "telegram", "--user", "42", "--source", "x"])
    assert "--result and --source go with --csv" in capsys.readouterr().err


def test_progress_lines_come_about_ten_times_and_at_the_end() -> None:
    class Lines:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

        def flush(self) -> None:
            pass

    out = Lines()
    progress = LineProgress(25, stream=out)  # type: ignore[arg-type]
    for done in range(1, 26):
        progress.update(done)
    assert out.text.splitlines() == [f"{n}/25 rows" for n in (3, 6, 9, 12, 15, 18, 21, 24, 25)]
    assert LineProgress(5000, stream=out).step == 500  # type: ignore[arg-type]
    assert LineProgress(200_000, stream=out).step == 1000  # type: ignore[arg-type]


def test_a_terminal_gets_a_progress_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with progress_for(3, stream=screen) as progress:
        for done in (1, 2, 3):
            progress.update(done)
    assert "3/3" in screen.getvalue() and "/3 rows" not in screen.getvalue()
