"""Configuration: a TOML file plus `CXBOT_SECTION__KEY` environment overrides, validated once.

Precedence, highest first: environment variables, the file, the defaults below. The file is
chosen by `--config PATH`, else `CXBOT_CONFIG`, else `./config.toml` when it exists; with none,
the embedded defaults apply. Every problem is reported with the key and where it came from.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.errors import ConfigError
from bot.webhook_settings import WebhookEndpoint, check_unique_names, merge_webhook_env

ENV_PREFIX = "CXBOT_"
CONFIG_ENV = "CXBOT_CONFIG"
DEFAULT_CONFIG_FILE = Path("config.toml")

# Values people leave in example files; a secret equal to one of these is never a real secret.
_PLACEHOLDER = re.compile(
    r"^(?:|x+|\*+|\.\.\.|changeme|change[-_ ]me|replace[-_ ]?me|todo|secret|token|"
    r"your[-_ ].*|<.*>|\$\{.*\}|example.*|dummy|placeholder|xoxb-your-.*|xapp-your-.*|"
    # An ellipsis is never part of a real token: "xoxb-...", "123456:ABC-DEF...".
    r".*(?:\.\.\.|…).*)$",
    re.IGNORECASE,
)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cxbot"


def _reject_placeholder(value: SecretStr | None) -> SecretStr | None:
    if value is None or not value.get_secret_value():
        return None  # an empty secret means "not set": the channel stays off
    if _PLACEHOLDER.match(value.get_secret_value().strip()):
        raise ValueError("looks like a placeholder, not a real secret; set the real value")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneralSettings(_Section):
    """Where cxbot keeps its files and how much it logs."""

    data_dir: Path = Field(default_factory=_default_data_dir)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # text: one readable line per record; json: one JSON object per line (bot/log_format.py).
    log_format: Literal["text", "json"] = "text"

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


class DatabaseSettings(_Section):
    """The SQLModel database. Empty `url` = a SQLite file `cxbot.db` in the data directory."""

    url: str = ""
    echo: bool = False


class FlowSettings(_Section):
    """Where flows come from and which one runs when none is named."""

    dirs: list[Path] = Field(default_factory=list)
    default: str = "post_interaction"

    @field_validator("dirs")
    @classmethod
    def _expand_home(cls, value: list[Path]) -> list[Path]:
        return [p.expanduser() for p in value]


class SurveySettings(_Section):
    """How the dialogue engine treats answers."""

    max_text_length: Annotated[int, Field(ge=16, le=100_000)] = 2000
    max_invalid_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    default_locale: str = "en"
    # Flood limit (Telegram and Slack): past this many messages from one customer in one window
    # of `rate_limit_seconds`, they get one notice and the rest are ignored (0: no limit).
    rate_limit_messages: Annotated[int, Field(ge=0, le=10_000)] = 20
    rate_limit_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    # Late comments kept per survey; more are acknowledged but not stored.
    max_late_comments: Annotated[int, Field(ge=0, le=1000)] = 5


DEFAULT_KEYWORDS = ["cancel", "refund", "lawyer", "chargeback", "complaint", "scam"]


class FlagSettings(_Section):
    """Rules that put a reply in the review queue."""

    # Score rules: inclusive upper bounds.
    nps_max: Annotated[int, Field(ge=-1, le=10)] = 6
    csat_max: Annotated[int, Field(ge=0, le=5)] = 2
    ces_max: Annotated[float, Field(ge=0, le=7)] = 3.0  # on a 1–7 scale; other scales rescale
    # Text rules: a negative label at least this confident flags the reply.
    negative_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    # A negative text beside a score at least this high is a mismatch worth a human's look.
    mismatch_nps_min: Annotated[int, Field(ge=0, le=10)] = 9
    mismatch_csat_min: Annotated[int, Field(ge=1, le=5)] = 4
    # Churn-risk words, matched case-insensitively as whole words (and their plurals).
    keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_KEYWORDS))


class SentimentSettings(_Section):
    """The sentiment model and its background worker."""

    enabled: bool = True
    # Empty: the shipped model. Else a local folder or Hugging Face hub id of any
    # sequence-classification model.
    model: str = ""
    # Only with this set may a hub id be downloaded (never in the default path).
    allow_download: bool = False
    # "onnx": the shipped model (and `cxbot nlp train` folders) on ONNX Runtime, exported on
    # first need into `onnx_cache_dir`; "torch": on torch. Other models always run on torch.
    backend: Literal["onnx", "torch"] = "onnx"
    # Empty: $CXBOT_CACHE_DIR, else $XDG_CACHE_HOME/cxbot, else ~/.cache/cxbot.
    onnx_cache_dir: str = ""
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 32
    # How long the worker waits to fill a batch before classifying what it has.
    max_wait_seconds: Annotated[float, Field(ge=0.0, le=60.0)] = 0.5
    # How often the worker looks for unscored answers when nobody nudges it.
    poll_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0
    # CPU threads for inference; 0 = let torch decide.
    num_threads: Annotated[int, Field(ge=0, le=256)] = 0
    # On exit, `cxbot chat` waits at most this long for the last answers to be labelled.
    drain_seconds: Annotated[float, Field(ge=0.0, le=600.0)] = 30.0
    # A flow condition on the sentiment of a text answer (`sentiment = "negative"`) waits at
    # most this long for the model while the model is still loading; without a label in time,
    # the condition is judged on the survey's score instead (bot/sentiment_branch.py).
    branch_wait_seconds: Annotated[float, Field(ge=0.0, le=30.0)] = 2.0
    # One model per language (ISO 639-1 code → "shipped" or a model folder / hub id); `model`
    # above is the default language's. A text in a language without a model is stored as
    # `unclassified` with its language (nlp/routing.py).
    models: dict[str, str] = Field(default_factory=dict)
    # Languages told apart (nlp/language.py); every language of `models` is added. Short or
    # unsure texts count as `default_language`.
    languages: list[str] = Field(default_factory=lambda: ["en", "es", "de", "fr", "it", "pt", "nl"])
    default_language: str = "en"

    @field_validator("models", "languages", "default_language")
    @classmethod
    def _check_language_codes(cls, value: Any) -> Any:
        codes = value if isinstance(value, list) else [value] if isinstance(value, str) else value
        for code in codes:
            if not re.fullmatch(r"[a-z]{2}", code):
                raise ValueError(f"{code!r} is not a two-letter language code (ISO 639-1)")
        return value

    def language_models(self) -> dict[str, str]:
        """Language → model: the default language gets `model` (or the shipped one) unless
        `models` names it."""
        return {self.default_language: self.model or "shipped", **self.models}


class ServerSettings(_Section):
    """The one HTTP server for everything web-facing (`cxbot serve`)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080


# Telegram's own rule for webhook secret tokens.
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramSettings(_Section):
    """Telegram bot credentials, endpoint and how updates arrive (long polling or webhook)."""

    token: SecretStr | None = None
    base_url: str = "https://api.telegram.org/bot"
    mode: Literal["polling", "webhook"] = "polling"
    # validate_default: "required in webhook mode" must also be checked when the key is absent.
    webhook_url: Annotated[str, Field(validate_default=True)] = ""
    secret_token: Annotated[SecretStr | None, Field(validate_default=True)] = None
    drop_pending_updates: bool = False

    _no_placeholder = field_validator("token")(_reject_placeholder)

    @staticmethod
    def _webhook_on(info: ValidationInfo) -> bool:
        # Only a configured bot needs webhook settings; without a token the channel is off.
        return info.data.get("mode") == "webhook" and info.data.get("token") is not None

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str, info: ValidationInfo) -> str:
        if not value and cls._webhook_on(info):
            raise ValueError(
                'required when mode = "webhook": the public https:// URL that reaches '
                "POST /telegram/webhook"
            )
        if value and not value.startswith("https://"):
            raise ValueError("must start with https:// (Telegram only delivers to HTTPS URLs)")
        return value

    @field_validator("secret_token")
    @classmethod
    def _check_secret_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        value = _reject_placeholder(value)
        if value is None:
            if cls._webhook_on(info):
                raise ValueError(
                    'required when mode = "webhook", so that only Telegram can post updates'
                )
            return None
        if not _TELEGRAM_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


class SlackSettings(_Section):
    """Slack app credentials, endpoint, how events arrive, and the support team's alerts."""

    bot_token: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    # socket: Socket Mode over a websocket (needs app_token, no public URL);
    # http: Slack POSTs to /slack/events on the HTTP server (needs signing_secret).
    mode: Literal["socket", "http"] = "socket"
    # validate_default: "required in this mode" must also be checked when the key is absent.
    app_token: Annotated[SecretStr | None, Field(validate_default=True)] = None
    signing_secret: Annotated[SecretStr | None, Field(validate_default=True)] = None
    # Channel id (C…) where flagged replies are posted; empty: no Slack alerts.
    alert_channel: str = ""
    # Slack user ids (U…) allowed to acknowledge, resolve and reply from alerts.
    support_users: Annotated[list[str], Field(validate_default=True)] = Field(default_factory=list)
    # How often the alert poster looks for new or changed review items.
    alert_poll_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0

    @staticmethod
    def _on(info: ValidationInfo, mode: str) -> bool:
        # Only a configured app needs its mode's credentials; without a bot token Slack is off.
        return info.data.get("mode") == mode and info.data.get("bot_token") is not None

    @field_validator("bot_token")
    @classmethod
    def _check_bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _reject_placeholder(value)

    @field_validator("app_token")
    @classmethod
    def _check_app_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        value = _reject_placeholder(value)
        if value is None and cls._on(info, "socket"):
            raise ValueError(
                'required when mode = "socket": an app-level token (xapp-…) with '
                'connections:write, or set mode = "http" and signing_secret'
            )
        return value

    @field_validator("signing_secret")
    @classmethod
    def _check_signing_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        value = _reject_placeholder(value)
        if value is None and cls._on(info, "http"):
            raise ValueError(
                'required when mode = "http", so that only Slack can post to /slack/events'
            )
        return value

    @field_validator("support_users")
    @classmethod
    def _check_support_users(cls, value: list[str], info: ValidationInfo) -> list[str]:
        bad = [u for u in value if not re.fullmatch(r"[UW][A-Z0-9]{2,}", u)]
        if bad:
            raise ValueError(f"not Slack user ids (U…): {', '.join(bad)}")
        if not value and info.data.get("alert_channel") and info.data.get("bot_token"):
            raise ValueError(
                "required with alert_channel: the Slack user ids (U…) who may work on alerts"
            )
        return value


DEFAULT_COOLDOWN_DAYS = 30
# A touchpoint's name as it appears in the API and in [touchpoints.NAME].
TOUCHPOINT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
Days = Annotated[int, Field(ge=0, le=3650)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]


def _check_quiet_hours(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None  # empty: no quiet hours
    from bot.quiet_hours import QuietHours

    try:
        return str(QuietHours.parse(value))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class InvitationSettings(_Section):
    """Fatigue rules and scheduling of surveys the bot starts itself (API, `cxbot invite`).

    Every rule can be overridden per touchpoint in `[touchpoints.NAME]`.
    """

    # No invitation to a customer surveyed (any flow) within this many days; 0 turns it off.
    # None: `quiet_days` if set (its old name, still accepted), else 30.
    cooldown_days: Days | None = None
    quiet_days: Days | None = None
    # No invitation to the same flow within this many days of the customer's last one; 0: off.
    recontact_days: Days = 0
    # Survey this share of interactions (decided per interaction id, so a repeat decides alike).
    sample_percent: Percent = 100.0
    # "HH:MM-HH:MM" in the customer's time zone: a send falling inside moves to its end.
    quiet_hours: Annotated[str | None, Field(validate_default=True)] = None
    # The customer's zone when neither the request nor an earlier one gave it (IANA name).
    default_time_zone: str = "UTC"
    # The scheduler in `cxbot serve`: how often it looks for due invitations, and how many it
    # takes per transaction.
    poll_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 5.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50

    _quiet_hours = field_validator("quiet_hours")(_check_quiet_hours)

    @field_validator("default_time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        from bot.quiet_hours import zone_named

        try:
            zone_named(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def cooldown(self) -> int:
        """The cooldown in days in force (`cooldown_days`, else `quiet_days`, else 30)."""
        for value in (self.cooldown_days, self.quiet_days):
            if value is not None:
                return value
        return DEFAULT_COOLDOWN_DAYS

    @property
    def cooldown_key(self) -> str:
        """The key the cooldown in force comes from, for messages."""
        if self.cooldown_days is None and self.quiet_days is not None:
            return "quiet_days"
        return "cooldown_days"


class TouchpointSettings(_Section):
    """One touchpoint (`[touchpoints.NAME]`): its flow and its own fatigue rules.

    A rule left out follows `[invitations]`.
    """

    # The flow its invitations run (empty: the request's flow_id, else [flows] default).
    flow: str | None = None
    cooldown_days: Days | None = None
    recontact_days: Days | None = None
    sample_percent: Percent | None = None
    quiet_hours: Annotated[str | None, Field(validate_default=True)] = None

    _quiet_hours = field_validator("quiet_hours")(_check_quiet_hours)


class ReminderSettings(_Section):
    """Reminders for surveys left unanswered, and when an unfinished survey closes.

    Applies to surveys on Telegram and Slack (the console has no background sends). Quiet
    hours and the default time zone are those of `[invitations]`.
    """

    # Reminders per survey (not per question); 0 turns reminders off.
    count: Annotated[int, Field(ge=0, le=10)] = 1
    # Hours of silence after the bot last asked a question before the first reminder.
    after_hours: Annotated[float, Field(gt=0.0, le=8760.0)] = 24.0
    # Hours between one reminder and the next (with count > 1).
    spacing_hours: Annotated[float, Field(gt=0.0, le=8760.0)] = 24.0
    # Hours after its start when an unfinished survey closes (expired); 0: never.
    expire_after_hours: Annotated[float, Field(ge=0.0, le=8760.0)] = 72.0
    # How often the worker of `cxbot serve` looks for due reminders and expiries.
    poll_seconds: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0
    # Surveys handled per pass (one transaction each) before the worker looks again.
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100


class DeliverySettings(_Section):
    """The outbox's delivery worker (`bot.delivery`)."""

    # Messages sent at once per process. A process that dies may send each message that was in
    # flight again after its restart, so 1 (the default) repeats at most one message per crash;
    # more sends faster where the platform answers slowly.
    max_in_flight: Annotated[int, Field(ge=1, le=64)] = 1
    # How long a claimed message is left to the process that claimed it before another takes
    # it over (a process known dead on the same host is taken over at once).
    lease_seconds: Annotated[float, Field(ge=30.0, le=3600.0)] = 120.0


class PrivacySettings(_Section):
    """Keeping free text only as long as needed (`bot.privacy`)."""

    # Free-text answers and late comments older than this many days are deleted by the hourly
    # housekeeping of `cxbot serve` (scores stay, their typed text blanked); 0 keeps text.
    text_retention_days: Annotated[int, Field(ge=0, le=36500)] = 0


class DeskSettings(_Section):
    """The web support desk under `/desk/` on `cxbot serve`'s HTTP server."""

    enabled: bool = True
    # Key that signs the session cookies. Unset: one is made once and kept in the database, so
    # that every process of one deployment accepts the others' sessions.
    session_secret: SecretStr | None = None
    # A session ends this long after sign-in; people sign in again.
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    # Send the cookie over HTTPS only: set it when the desk is reached through HTTPS.
    cookie_secure: bool = False
    # Failed sign-ins allowed per address and per e-mail within `login_window_minutes`.
    login_attempts: Annotated[int, Field(ge=1, le=1000)] = 5
    login_window_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15.0
    # Items not acknowledged within this many hours are shown as past the response target.
    response_target_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 4.0
    # Sentiment labels less confident than this are "low confidence" (a queue filter).
    low_confidence_below: Annotated[float, Field(ge=0, le=1)] = 0.6
    # Rows per page of the review queue.
    page_size: Annotated[int, Field(ge=5, le=500)] = 50

    _placeholder = field_validator("session_secret")(_reject_placeholder)


class Settings(_Section):
    """All of cxbot's settings; see config.example.toml for every key."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    survey: SurveySettings = Field(default_factory=SurveySettings)
    flags: FlagSettings = Field(default_factory=FlagSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    invitations: InvitationSettings = Field(default_factory=InvitationSettings)
    # Touchpoints beyond the built-in ones, and the built-ins' flows and rules.
    touchpoints: dict[str, TouchpointSettings] = Field(default_factory=dict)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    desk: DeskSettings = Field(default_factory=DeskSettings)
    # [[webhooks]]: endpoints told when a response completes or is flagged (bot/webhook_events).
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)

    @field_validator("webhooks")
    @classmethod
    def _check_webhook_names(cls, value: list[WebhookEndpoint]) -> list[WebhookEndpoint]:
        check_unique_names(value)
        return value

    @field_validator("touchpoints")
    @classmethod
    def _check_touchpoint_names(
        cls, value: dict[str, TouchpointSettings]
    ) -> dict[str, TouchpointSettings]:
        bad = [name for name in value if not TOUCHPOINT_NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"touchpoint names are 1-64 of a-z 0-9 _ . - (starting with a letter or digit), "
                f"not {', '.join(map(repr, bad))}"
            )
        return value

    @property
    def database_url(self) -> str:
        """The configured URL, or the default SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.general.data_dir / 'cxbot.db'}"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _env_overrides(
    environ: Mapping[str, str], problems: list[str]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(section, key) → (environment variable name, value) for every CXBOT_SECTION__KEY.

    A malformed name is added to `problems` rather than raised, so all are reported at once.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        section, sep, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not sep or not section or not key:
            problems.append(f"environment variable {name}: expected CXBOT_SECTION__KEY")
            continue
        found[(section, key)] = (name, value)
    return found


def _endpoint_label(data: dict[str, Any], index: int) -> str:
    """How an error names the `index`-th webhook endpoint: its name, else its position."""
    name = data["webhooks"][index].get("name")
    return repr(name) if isinstance(name, str) and name else f"#{index + 1}"


def _coerce_env(value: str, field_annotation: Any) -> Any:
    """Environment values are strings; lists are comma-separated, tables `key=value` pairs
    (`de=/models/de,es=shipped`), the rest pydantic coerces."""
    if "dict" in str(field_annotation):
        pairs = [part.partition("=") for part in value.split(",") if part.strip()]
        return {k.strip(): v.strip() for k, sep, v in pairs} if all(p[1] for p in pairs) else value
    if "list" in str(field_annotation):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def resolve_config_path(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: --config, else CXBOT_CONFIG, else ./config.toml if present."""
    if explicit is not None:
        return explicit
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError naming key and source."""
    env = os.environ if environ is None else environ
    config_path = resolve_config_path(path, env)
    data: dict[str, Any] = _read_file(config_path) if config_path is not None else {}
    source: dict[tuple[str, str], str] = {}
    where_file = str(config_path) if config_path is not None else "defaults"
    for section, values in data.items():
        if isinstance(values, dict):
            for key in values:
                source[(section, key)] = where_file

    sections = Settings.model_fields
    webhook_env: list[tuple[str, str, str]] = []
    env_problems: list[str] = []  # every bad variable at once, not one per run
    for (section, key), (var, value) in _env_overrides(env, env_problems).items():
        if section == "webhooks":  # a list of tables: CXBOT_WEBHOOKS__<NAME>__<KEY>
            webhook_env.append((key, var, value))
            continue
        if section not in sections:
            env_problems.append(
                f"environment variable {var}: unknown section [{section}]; "
                f"known sections: {', '.join(sections)}"
            )
            continue
        section_model = sections[section].annotation
        fields = getattr(section_model, "model_fields", {})
        if key not in fields:
            env_problems.append(
                f"environment variable {var}: unknown key '{key}' in [{section}]; "
                f"known keys: {', '.join(fields)}"
            )
            continue
        data.setdefault(section, {})[key] = _coerce_env(value, fields[key].annotation)
        source[(section, key)] = f"environment variable {var}"
    webhook_source: dict[tuple[int, str], str] = {}
    if "webhooks" in data or webhook_env:
        data["webhooks"], webhook_source = merge_webhook_env(
            data.get("webhooks"), webhook_env, where_file
        )

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = list(env_problems)
        for err in exc.errors():
            loc = [str(part) for part in err["loc"]]
            section = loc[0] if loc else ""
            key = loc[1] if len(loc) > 1 else ""
            origin = source.get((section, key), where_file)
            name = f"[{section}] {'.'.join(loc[1:])}" if key else f"[{section}]"
            if section == "webhooks" and key.isdigit():
                field = loc[2] if len(loc) > 2 else ""
                origin = webhook_source.get((int(key), field), where_file)
                name = f"[[webhooks]] {_endpoint_label(data, int(key))} {'.'.join(loc[2:])}"
                if err["type"] == "missing":
                    err["msg"] = "required in each [[webhooks]] table (or from the environment)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key" if key else "unknown section"
            problems.append(f"{origin}: {name}: {msg}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    if env_problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(env_problems))
    return settings
