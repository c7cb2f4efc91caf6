"""Configuration: file + environment overrides, validation messages naming key and source."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_embedded_defaults_use_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"CXBOT_GENERAL__DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'cxbot.db'}"
    assert settings.server.port == 8080
    assert settings.flows.default == "post_interaction"


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert load_settings(None, environ={}).general.data_dir == tmp_path / "cxbot"


def test_example_config_is_valid_and_complete() -> None:
    settings = load_settings(REPO / "config.example.toml", environ={})
    assert settings.survey.max_text_length == 2000
    text = (REPO / "config.example.toml").read_text()
    # Every key of every section is documented in the example file.
    for section, field in type(settings).model_fields.items():
        assert f"[{section}]" in text
        # A list or table of sections ([[webhooks]], [touchpoints.NAME]): the model inside.
        model = (get_args(field.annotation) or (field.annotation,))[-1]
        for key in model.model_fields:
            assert f"{key} =" in text, f"[{section}] {key} missing from config.example.toml"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[database]\nurl = "sqlite:///from-file.db"\n[server]\nport = 9000\n')
    settings = load_settings(
        path,
        environ={
            "CXBOT_DATABASE__URL": "sqlite:///from-env.db",
            "CXBOT_SURVEY__MAX_TEXT_LENGTH": "500",
        },
    )
    assert settings.database.url == "sqlite:///from-env.db"
    assert settings.server.port == 9000
    assert settings.survey.max_text_length == 500


def test_cxbot_config_variable_selects_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[server]\nport = 9100\n")
    assert load_settings(None, environ={"CXBOT_CONFIG": str(path)}).server.port == 9100


def test_list_values_from_environment_are_comma_separated() -> None:
    settings = load_settings(None, environ={"CXBOT_FLOWS__DIRS": "/a, /b"})
    assert settings.flows.dirs == [Path("/a"), Path("/b")]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nport = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 2"):
        load_settings(path, environ={})


def test_bad_value_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert f"{path}: [server] port:" in str(err.value)


def test_bad_value_from_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={"CXBOT_SERVER__PORT": "99999"})
    assert "environment variable CXBOT_SERVER__PORT: [server] port:" in str(err.value)


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[survey]\nmax_text_lenght = 10\n")
    with pytest.raises(ConfigError, match=r"\[survey\] max_text_lenght: unknown key"):
        load_settings(path, environ={})


def test_every_bad_environment_variable_is_reported_at_once() -> None:
    environ = {
        "CXBOT_DATABASE__URI": "x",
        "CXBOT_NOPE__X": "x",
        "CXBOT_DATABASE": "x",
        "CXBOT_SERVER__PORT": "99999",
        "CXBOT_SURVEY__MAX_TEXT_LENGTH": "many",
    }
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=environ)
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert len(lines) == 6
    for var in environ:
        assert sum(f"environment variable {var}:" in line for line in lines) == 1, var


@pytest.mark.parametrize(("key", "value"), [("bot_token", "xoxb-..."), ("app_token", "xapp-…")])
def test_slack_tokens_as_the_readme_abbreviates_them_are_rejected(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[slack\] {key}: looks like a placeholder"):
        load_settings(None, environ={f"CXBOT_SLACK__{key.upper()}": value})


def test_unknown_environment_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="CXBOT_DATABASE__URI: unknown key 'uri'"):
        load_settings(None, environ={"CXBOT_DATABASE__URI": "x"})
    with pytest.raises(ConfigError, match="unknown section"):
        load_settings(None, environ={"CXBOT_NOPE__X": "x"})
    with pytest.raises(ConfigError, match="expected CXBOT_SECTION__KEY"):
        load_settings(None, environ={"CXBOT_DATABASE": "x"})


@pytest.mark.parametrize(
    "value", ["changeme", "YOUR_TOKEN_HERE", "<token>", "xxx", "...", "123456:ABC-DEF..."]
)
def test_placeholder_secrets_are_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[telegram\] token: looks like a placeholder"):
        load_settings(None, environ={"CXBOT_TELEGRAM__TOKEN": value})


def test_empty_secret_means_unset() -> None:
    assert load_settings(None, environ={"CXBOT_TELEGRAM__TOKEN": ""}).telegram.token is None


def test_real_looking_secret_is_accepted_and_hidden() -> None:
    settings = load_settings(None, environ={"CXBOT_TELEGRAM__TOKEN": "123456:AAH-real-token"})
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123456:AAH-real-token"
    assert "AAH-real" not in repr(settings)


def test_sentiment_models_per_language_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[sentiment]\nmodels = { de = "/models/de" }\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.sentiment.language_models() == {"en": "shipped", "de": "/models/de"}
    env = {"CXBOT_SENTIMENT__MODELS": "es=/models/es, en=/models/en"}
    from_env = load_settings(None, environ=env)
    assert from_env.sentiment.language_models() == {"en": "/models/en", "es": "/models/es"}


def test_sentiment_language_codes_are_checked() -> None:
    with pytest.raises(ConfigError, match="'german' is not a two-letter language code"):
        load_settings(None, environ={"CXBOT_SENTIMENT__MODELS": "german=/models/de"})
    with pytest.raises(ConfigError, match="CXBOT_SENTIMENT__LANGUAGES"):
        load_settings(None, environ={"CXBOT_SENTIMENT__LANGUAGES": "en,EN"})
