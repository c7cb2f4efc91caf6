"""`[[webhooks]]` settings: the file, environment overrides, and bad endpoints refused at start."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.webhook_settings import default_name

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def load(tmp_path: Path, toml: str, **environ: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return load_settings(path, environ=environ)


def test_endpoints_from_the_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        f"""
[[webhooks]]
name = "crm"
url = "https://crm.example.com/hooks/cxbot"
secret = "{SECRET}"
events = ["response.flagged"]
timeout_seconds = 5

[[webhooks]]
url = "http://10.0.0.7:8000/feedback"
secret = "{SECRET.removeprefix("whsec_")}"
""",
    )
    crm, unnamed = settings.webhooks
    assert (crm.name, crm.url, crm.events, crm.timeout_seconds) == (
        "crm",
        "https://crm.example.com/hooks/cxbot",
        ["response.flagged"],
        5.0,
    )
    assert crm.key == b"0123456789abcdef0123456789abcdef"
    # No name: one derived from the URL (stable, so reordering the file changes nothing).
    assert unnamed.name == default_name("http://10.0.0.7:8000/feedback")
    assert unnamed.name.startswith("endpoint_")
    assert unnamed.events == ["response.completed", "response.flagged"]
    assert unnamed.key == crm.key  # the whsec_ prefix is optional
    assert "0123" not in repr(settings.webhooks)  # the secret is never printed


def test_none_by_default() -> None:
    assert load_settings(None, environ={}).webhooks == []


def test_the_secret_can_come_from_the_environment(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[[webhooks]]\nname = "crm"\nurl = "https://crm.example.com/h"\n',
        CXBOT_WEBHOOKS__CRM__SECRET=SECRET,
    )
    assert settings.webhooks[0].secret.get_secret_value() == SECRET


def test_an_endpoint_can_live_in_the_environment_alone(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        environ={
            "CXBOT_WEBHOOKS__BI_FEED__URL": "https://bi.example.com/in",
            "CXBOT_WEBHOOKS__BI_FEED__SECRET": SECRET,
            "CXBOT_WEBHOOKS__BI_FEED__EVENTS": "response.completed, response.flagged",
        },
    )
    [endpoint] = settings.webhooks
    assert endpoint.name == "bi_feed"
    assert endpoint.events == ["response.completed", "response.flagged"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            f'secret = "{SECRET}"',
            r"defaults|config\.toml: \[\[webhooks\]\] #1 url: required in each \[\[webhooks\]\]",
        ),
        (
            'url = "https://x.example/h"',
            r"\[\[webhooks\]\] #1 secret: required in each \[\[webhooks\]\] table",
        ),
        (
            f'url = "ftp://x.example/h"\nsecret = "{SECRET}"',
            r"\[\[webhooks\]\] #1 url: 'ftp://x.example/h' is not an http:// or https:// URL",
        ),
        (
            f'url = "crm.example.com/h"\nsecret = "{SECRET}"',
            r"#1 url: 'crm.example.com/h' is not an http:// or https:// URL with a host",
        ),
        (
            'name = "crm"\nurl = "https://x.example/h"\nsecret = "whsec_not base64!"',
            r"\[\[webhooks\]\] 'crm' secret: not base64 after the whsec_ prefix; generate one",
        ),
        (
            'url = "https://x.example/h"\nsecret = "whsec_c2hvcnQ="',
            r"secret: decodes to 5 bytes; Standard Webhooks secrets are 24-64 random bytes",
        ),
        (
            'url = "https://x.example/h"\nsecret = "changeme"',
            r"secret: decodes to 6 bytes",
        ),
        (
            f'url = "https://x.example/h"\nsecret = "{SECRET}"\nevents = ["response.created"]',
            r"#1 events\.0: Input should be 'response\.completed' or 'response\.flagged'",
        ),
        (
            f'url = "https://x.example/h"\nsecret = "{SECRET}"\nevents = []',
            r"#1 events: List should have at least 1 item",
        ),
        (
            f'name = "CRM Feed"\nurl = "https://x.example/h"\nsecret = "{SECRET}"',
            r"name: 'CRM Feed': use lowercase letters, digits and single underscores",
        ),
        (
            f'url = "https://x.example/h"\nsecret = "{SECRET}"\nsecrett = "x"',
            r"\[\[webhooks\]\] #1 secrett: unknown key",
        ),
    ],
)
def test_a_bad_endpoint_is_refused_with_the_key_named(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"[[webhooks]]\n{table}\n")


def test_an_override_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"environment variable CXBOT_WEBHOOKS__CRM__SECRET: \[\[webhooks\]\] 'crm' "
        r"secret: decodes to 3 bytes",
    ):
        load(
            tmp_path,
            f'[[webhooks]]\nname = "crm"\nurl = "https://x.example/h"\nsecret = "{SECRET}"\n',
            CXBOT_WEBHOOKS__CRM__SECRET="whsec_YWJj",
        )


@pytest.mark.parametrize(
    "variable", ["CXBOT_WEBHOOKS__CRM", "CXBOT_WEBHOOKS__CRM__SECRETS", "CXBOT_WEBHOOKS__CRM__NAME"]
)
def test_a_malformed_variable_is_refused(variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable}: expected CXBOT_WEBHOOKS__<NAME>__<KEY>"):
        load_settings(None, environ={variable: "x"})


def test_two_endpoints_of_one_name_are_refused(tmp_path: Path) -> None:
    table = f'[[webhooks]]\nname = "crm"\nurl = "https://x.example/h"\nsecret = "{SECRET}"\n'
    with pytest.raises(ConfigError, match="two endpoints are named 'crm'"):
        load(tmp_path, table + table)


def test_a_table_instead_of_a_list_says_how_to_write_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"write \[\[webhooks\]\] above each endpoint"):
        load(tmp_path, f'[webhooks]\nurl = "https://x.example/h"\nsecret = "{SECRET}"\n')


def test_serve_with_a_bad_endpoint_stops_at_start_with_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[webhooks]]\nurl = "mailto:ops@example.com"\nsecret = "x"\n')
    assert main(["serve", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cxbot: error: invalid configuration:")
    assert "[[webhooks]] #1 url: 'mailto:ops@example.com' is not an http" in err
    assert "[[webhooks]] #1 secret: not base64" in err
