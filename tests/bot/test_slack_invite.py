"""`cxbot invite --channel slack` as users call it, against the fake Slack Web API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.cli_runner import Run, cli_runner
from tests.fakes.slack_api import FakeSlackAPI

ANN = "U0ANN0001"
DM = "D0ANN0001"


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
def cxbot(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake: FakeSlackAPI,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """Run `cxbot ARGS` with a Slack app (Socket Mode settings) at the fake."""
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SLACK__BOT_TOKEN", fake.token)
    monkeypatch.setenv("CXBOT_SLACK__APP_TOKEN", fake.app_token)
    monkeypatch.setenv("CXBOT_SLACK__BASE_URL", fake.base_url)
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")

    return cli_runner(capsys)


def invite(cxbot: Run, *extra: str) -> tuple[int, str, str]:
    return cxbot("invite", "--channel", "slack", "--user", ANN, *extra)


def test_invite_opens_a_dm_and_asks_the_first_question(cxbot: Run, fake: FakeSlackAPI) -> None:
    code, out, _ = invite(cxbot, "--context", "ticket_id=T-42")
    assert code == 0
    assert out == f"sent: survey 'post_interaction' to slack user {ANN} (2 message(s))"
    (opened,) = fake.requests("conversations.open")
    assert opened.body["users"] == ANN
    intro, nps = fake.posted(DM)
    assert intro["text"] == "Hi there! We'd love your feedback on T-42. It takes about a minute."
    assert nps["text"].startswith("How likely are you to recommend us")
    assert [b["type"] for b in nps["blocks"]] == ["section", "actions", "actions"]
    # The fatigue rule applies to Slack as to any channel.
    code, out, _ = invite(cxbot)
    assert code == 3 and "within the quiet period" in out
    assert len(fake.requests("conversations.open")) == 1


def test_a_deactivated_account_is_unreachable(cxbot: Run, fake: FakeSlackAPI) -> None:
    fake.fail("chat.postMessage", "account_inactive")
    code, out, _ = invite(cxbot)
    assert code == 4
    assert out == (
        f"not sent: slack user {ANN} is unreachable: chat.postMessage to {DM}: account_inactive"
    )
    code, out, _ = invite(cxbot)  # not tried again until they write
    assert code == 4 and "is unreachable since" in out
    assert len(fake.requests("chat.postMessage")) == 1  # the refused one only


def test_a_rate_limit_is_waited_out(cxbot: Run, fake: FakeSlackAPI) -> None:
    fake.fail("conversations.open", "ratelimited", status=429, retry_after=0.1)
    code, _, _ = invite(cxbot)
    assert code == 0
    assert [c.status for c in fake.requests("conversations.open")] == [429, 200]
    assert len(fake.posted(DM)) == 2
