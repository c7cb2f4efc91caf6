"""`cxbot invite` and `cxbot telegram link` as users call them, against the fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from adapters.telegram_links import decode_start_payload
from bot.app import build_app
from bot.config import load_settings
from bot.messages import IncomingMessage
from storage.database import transaction
from storage.tables import Conversation, Invitation
from tests.fakes.cli_runner import Run, cli_runner
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import conversations, customer, keyboard


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeTelegramAPI) -> None:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_TELEGRAM__TOKEN", fake.token)
    monkeypatch.setenv("CXBOT_TELEGRAM__BASE_URL", fake.base_url)
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")


@pytest.fixture
def cxbot(env: None, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `cxbot ARGS`: (exit status, stdout, stderr)."""

    return cli_runner(capsys)


def say(message: IncomingMessage) -> None:
    """The customer wrote to the bot (straight to the engine, as the channel would)."""
    app = build_app(load_settings())
    try:
        asyncio.run(app.engine.handle(message))
    finally:
        app.close()


def invite(cxbot: Run, user: str = "42", *extra: str) -> tuple[int, str, str]:
    return cxbot("invite", "--channel", "telegram", "--user", user, *extra)


def test_invitation_is_sent_with_flow_and_context(cxbot: Run, fake: FakeTelegramAPI) -> None:
    fake.known_chats.add(42)  # the customer started the bot some time ago
    code, out, _ = invite(cxbot, "42", "--flow", "post_purchase", "--context", "order_id=A-7")
    assert (code, out) == (0, "sent: survey 'post_purchase' to telegram user 42 (2 message(s))")
    intro, question = fake.sent(42)
    assert "A-7" in intro["text"]
    assert keyboard(question) == [[("Yes", "a:on_time:yes"), ("No", "a:on_time:no")]]
    app = build_app(load_settings())
    try:
        (conv,) = conversations(app)
        assert (conv.state, conv.flow_id, conv.context) == (
            "active",
            "post_purchase",
            {"order_id": "A-7"},
        )
    finally:
        app.close()


def test_a_customer_surveyed_recently_is_left_in_peace(
    cxbot: Run, fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.known_chats.add(42)
    assert invite(cxbot)[0] == 0
    code, out, _ = invite(cxbot)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert code == 3
    assert out == (
        f"not sent: telegram user 42 was surveyed on {today}, within the quiet period "
        "([invitations] cooldown_days = 30)"
    )
    assert len(fake.sent(42)) == 2

    app = build_app(load_settings())
    try:  # five weeks later
        with transaction(app.db) as s:
            for conv in s.exec(select(Conversation)):
                conv.started_at = datetime.now(UTC) - timedelta(days=35)
                s.add(conv)
            for sent in s.exec(select(Invitation)):
                sent.decided_at = datetime.now(UTC) - timedelta(days=35)
                s.add(sent)
    finally:
        app.close()
    assert invite(cxbot, "42", "--context", "ticket=T-2")[0] == 0

    monkeypatch.setenv("CXBOT_INVITATIONS__QUIET_DAYS", "0")  # the rule turned off
    assert invite(cxbot, "42", "--context", "ticket=T-3")[0] == 0
    assert len(fake.sent(42)) == 6


def test_an_opted_out_customer_is_not_invited(cxbot: Run, fake: FakeTelegramAPI) -> None:
    fake.known_chats.add(42)
    say(IncomingMessage(channel="telegram", user_id="42", text="stop"))
    code, out, _ = invite(cxbot)
    assert code == 3
    assert out.startswith("not sent: telegram user 42 opted out of surveys on ")
    assert fake.requests("sendMessage") == []


def test_a_customer_who_never_started_the_bot_is_unreachable(
    cxbot: Run, fake: FakeTelegramAPI
) -> None:
    code, out, _ = invite(cxbot, "99")  # Telegram: 400 chat not found
    assert code == 4
    assert out.startswith("not sent: telegram user 99 is unreachable: sendMessage to 99: Chat not")
    assert "never written to the bot" in out
    app = build_app(load_settings())
    try:
        stored = customer(app, "99")
        assert stored is not None and stored.unreachable_at is not None
        # The survey that never arrived does not count as one.
        assert [c.state for c in conversations(app, "99")] == ["abandoned"]
    finally:
        app.close()
    again = invite(cxbot, "99")
    assert again[0] == 4 and "is unreachable since" in again[1]
    assert len(fake.requests("sendMessage", chat_id=99)) == 1  # not tried a second time


def test_a_customer_who_blocked_the_bot_is_unreachable(cxbot: Run, fake: FakeTelegramAPI) -> None:
    fake.known_chats.add(42)
    say(IncomingMessage(channel="telegram", user_id="42", text="hello"))  # a month ago
    fake.block(42)
    code, out, _ = invite(cxbot)
    assert code == 4
    assert out == (
        "not sent: telegram user 42 is unreachable: "
        "sendMessage to 42: Forbidden: bot was blocked by the user"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "slack", "--user", "U123"], "Slack is not configured"),
        (["--channel", "slack", "--user", "alice"], "a Slack user id looks like"),
        (["--channel", "telegram", "--user", "alice"], "numeric chat id"),
        (["--channel", "telegram", "--user", "42", "--flow", "nope"], "unknown flow 'nope'"),
    ],
)
def test_invite_errors(cxbot: Run, fake: FakeTelegramAPI, args: list[str], message: str) -> None:
    code, _, err = cxbot("invite", *args)
    assert code == 1
    assert err.startswith("cxbot: error: ") and message in err
    assert fake.requests("sendMessage") == []


def test_invite_without_a_telegram_token(cxbot: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXBOT_TELEGRAM__TOKEN")
    code, _, err = invite(cxbot)
    assert code == 1 and "Telegram is not configured: set [telegram] token" in err


def test_telegram_link_prints_a_deep_link(
    cxbot: Run, fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = cxbot(
        "telegram", "link", "--flow", "post_purchase", "--context", "order_id=A-1001"
    )
    assert code == 0 and out.startswith("https://t.me/cx_test_bot?start=post_purchase-")
    payload = decode_start_payload(out.split("start=")[1])
    assert (payload.flow_id, payload.context) == ("post_purchase", {"order_id": "A-1001"})

    assert cxbot("telegram", "link", "--bot", "@other_bot")[1] == (
        "https://t.me/other_bot?start=post_interaction"
    )
    monkeypatch.delenv("CXBOT_TELEGRAM__TOKEN")
    code, out, err = cxbot("telegram", "link")
    assert (code, out) == (0, "post_interaction") and "pass --bot" in err
    code, _, err = cxbot("telegram", "link", "--context", f"note={'x' * 80}")
    assert code == 1 and "Telegram allows 64" in err


def invitations() -> list[tuple[str, str, str | None, str | None]]:
    """(source, status, reason, touchpoint) of every stored invitation."""
    app = build_app(load_settings())
    try:
        with transaction(app.db) as s:
            rows = s.exec(select(Invitation).order_by(col(Invitation.id))).all()
            return [(r.source, r.status, r.reason, r.touchpoint) for r in rows]
    finally:
        app.close()


def test_invite_goes_through_the_invitation_rules_with_a_touchpoint(
    cxbot: Run, fake: FakeTelegramAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[touchpoints.purchase]\nflow = "post_purchase"\n')
    monkeypatch.setenv("CXBOT_CONFIG", str(config))
    fake.known_chats.update({42, 43})
    code, out, _ = invite(cxbot, "42", "--touchpoint", "purchase", "--context", "order_id=A-7")
    assert (code, out) == (0, "sent: survey 'post_purchase' to telegram user 42 (2 message(s))")
    assert cxbot("suppress", "add", "telegram:43")[0] == 0
    code, out, _ = invite(cxbot, "43", "--touchpoint", "refund")
    assert (code, out) == (3, "not sent: telegram user 43 is on the suppression list")
    assert invitations() == [
        ("cli", "sent", None, "purchase"),
        ("cli", "withheld", "suppressed", "refund"),
    ]
    code, _, err = invite(cxbot, "42", "--touchpoint", "birthday")
    assert code == 1 and "unknown touchpoint 'birthday'; known: first_visit" in err
    assert len(fake.requests("sendMessage")) == 2


def test_invite_inside_the_quiet_hours_is_scheduled_for_their_end(
    cxbot: Run, fake: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    monkeypatch.setenv("CXBOT_INVITATIONS__QUIET_HOURS", f"{start:%H:%M}-{end:%H:%M}")
    fake.known_chats.add(42)
    code, out, _ = invite(cxbot)
    assert code == 0
    assert out.startswith(
        f"scheduled: survey 'post_interaction' to telegram user 42 at {end:%Y-%m-%d %H:%M} UTC "
        "(moved out of the quiet hours"
    )
    assert out.endswith("; `cxbot serve` sends it then")
    assert fake.requests("sendMessage") == []
    assert invitations() == [("cli", "scheduled", "quiet_hours", None)]
