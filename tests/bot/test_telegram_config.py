"""The [telegram] and [invitations] settings: polling by default, webhook only when complete."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

TOKEN = {"CXBOT_TELEGRAM__TOKEN": "123456:AAreal-looking-token"}
WEBHOOK = {
    **TOKEN,
    "CXBOT_TELEGRAM__MODE": "webhook",
    "CXBOT_TELEGRAM__WEBHOOK_URL": "https://bot.example.com/telegram/webhook",
    "CXBOT_TELEGRAM__SECRET_TOKEN": "Long_random-secret42",
}


def test_defaults_poll_and_keep_a_two_week_quiet_period() -> None:
    settings = load_settings(None, environ={})
    assert settings.telegram.mode == "polling"
    assert (settings.telegram.webhook_url, settings.telegram.secret_token) == ("", None)
    assert settings.telegram.drop_pending_updates is False
    assert settings.invitations.cooldown == 30


def test_a_complete_webhook_configuration() -> None:
    tg = load_settings(None, environ=WEBHOOK).telegram
    assert tg.mode == "webhook" and tg.secret_token is not None
    assert tg.secret_token.get_secret_value() == "Long_random-secret42"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"CXBOT_TELEGRAM__WEBHOOK_URL": ""},
            '[telegram] webhook_url: required when mode = "webhook"',
        ),
        (
            {"CXBOT_TELEGRAM__WEBHOOK_URL": "http://bot.example.com/hook"},
            "[telegram] webhook_url: must start with https://",
        ),
        (
            {"CXBOT_TELEGRAM__SECRET_TOKEN": ""},
            '[telegram] secret_token: required when mode = "webhook"',
        ),
        ({"CXBOT_TELEGRAM__SECRET_TOKEN": "changeme"}, "looks like a placeholder"),
        ({"CXBOT_TELEGRAM__SECRET_TOKEN": "has spaces!"}, "1-256 characters of A-Z"),
        ({"CXBOT_TELEGRAM__MODE": "carrier-pigeon"}, "[telegram] mode: Input should be"),
        ({"CXBOT_INVITATIONS__QUIET_DAYS": "-1"}, "[invitations] quiet_days"),
    ],
)
def test_incomplete_or_wrong_webhook_settings_are_refused(
    change: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={**WEBHOOK, **change})
    assert problem in str(err.value)
    assert "environment variable CXBOT_" in str(err.value)


def test_webhook_settings_are_not_needed_while_the_bot_is_off() -> None:
    settings = load_settings(None, environ={"CXBOT_TELEGRAM__MODE": "webhook"})
    assert settings.telegram.token is None
