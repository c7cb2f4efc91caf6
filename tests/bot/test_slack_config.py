"""The [slack] settings: Socket Mode by default, each mode's credentials, alert set-up."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

SOCKET = {
    "CXBOT_SLACK__BOT_TOKEN": "xoxb-1234-5678-realLookingToken",
    "CXBOT_SLACK__APP_TOKEN": "xapp-1-A1234-5678-realLooking",
}
HTTP = {
    "CXBOT_SLACK__BOT_TOKEN": "xoxb-1234-5678-realLookingToken",
    "CXBOT_SLACK__MODE": "http",
    "CXBOT_SLACK__SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
}


def test_defaults() -> None:
    slack = load_settings(None, environ={}).slack
    assert (slack.mode, slack.alert_channel, slack.support_users) == ("socket", "", [])
    assert slack.base_url == "https://slack.com/api/"


def test_complete_configurations() -> None:
    assert load_settings(None, environ=SOCKET).slack.mode == "socket"
    slack = load_settings(
        None,
        environ={
            **HTTP,
            "CXBOT_SLACK__ALERT_CHANNEL": "C0ALERTS1",
            "CXBOT_SLACK__SUPPORT_USERS": "U0AGENT01, U0AGENT02",
        },
    ).slack
    assert slack.mode == "http" and slack.support_users == ["U0AGENT01", "U0AGENT02"]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {**SOCKET, "CXBOT_SLACK__APP_TOKEN": ""},
            '[slack] app_token: required when mode = "socket"',
        ),
        (
            {**HTTP, "CXBOT_SLACK__SIGNING_SECRET": ""},
            '[slack] signing_secret: required when mode = "http"',
        ),
        ({**SOCKET, "CXBOT_SLACK__BOT_TOKEN": "xoxb-your-token"}, "looks like a placeholder"),
        ({**HTTP, "CXBOT_SLACK__SIGNING_SECRET": "changeme"}, "looks like a placeholder"),
        (
            {**SOCKET, "CXBOT_SLACK__ALERT_CHANNEL": "C0ALERTS1"},
            "[slack] support_users: required with alert_channel",
        ),
        (
            {**SOCKET, "CXBOT_SLACK__SUPPORT_USERS": "alice"},
            "[slack] support_users: not Slack user ids (U…): alice",
        ),
        ({**SOCKET, "CXBOT_SLACK__MODE": "pigeon"}, "[slack] mode: Input should be"),
    ],
)
def test_incomplete_or_wrong_settings_are_refused(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=environ)
    assert problem in str(err.value)


def test_nothing_is_required_while_slack_is_off() -> None:
    slack = load_settings(
        None, environ={"CXBOT_SLACK__MODE": "http", "CXBOT_SLACK__ALERT_CHANNEL": "C1"}
    ).slack
    assert slack.bot_token is None
