"""`[[webhooks]]`: the endpoints that hear about responses, and their environment overrides.

Each endpoint is a table of the list `webhooks`:

    [[webhooks]]
    name = "crm"                       # keys its queue and its environment overrides
    url = "https://crm.example.com/hooks/cxbot"
    secret = "whsec_…"                 # Standard Webhooks: base64 of 24–64 random bytes
    events = ["response.completed", "response.flagged"]

`CXBOT_WEBHOOKS__<NAME>__<KEY>` sets one key of the endpoint called NAME (an endpoint that the
file does not list is added), so that secrets need not live in the file:
`CXBOT_WEBHOOKS__CRM__SECRET=whsec_…`. An endpoint without a `name` is named after its URL
(`endpoint_` + 8 hex digits of its SHA-256), so that reordering the file never sends queued
events to another endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.errors import ConfigError

EventType = Literal["response.completed", "response.flagged"]
RESPONSE_COMPLETED: Final = "response.completed"
RESPONSE_FLAGGED: Final = "response.flagged"
EVENT_TYPES: tuple[EventType, ...] = (RESPONSE_COMPLETED, RESPONSE_FLAGGED)

SECRET_PREFIX = "whsec_"
# The Standard Webhooks specification's bounds for a signing key.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
SECRET_HINT = (
    "generate one with: python3 -c \"import base64,os; print('whsec_' + "
    'base64.b64encode(os.urandom(32)).decode())"'
)
# Lowercase words joined by single underscores: a name must survive the round trip through an
# environment variable's name (CXBOT_WEBHOOKS__<NAME>__SECRET, "__" separating the parts).
_NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
MAX_NAME = 40


def default_name(url: str) -> str:
    """The name of an endpoint that has none: stable for its URL."""
    return "endpoint_" + hashlib.sha256(url.encode()).hexdigest()[:8]


def decode_secret(text: str) -> bytes:
    """The signing key a `whsec_…` secret stands for; ValueError saying what is wrong."""
    value = text.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not base64 after the whsec_ prefix; {SECRET_HINT}") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"decodes to {len(key)} bytes; Standard Webhooks secrets are "
            f"{MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} random bytes; {SECRET_HINT}"
        )
    return key


class WebhookEndpoint(BaseModel):
    """One `[[webhooks]]` table: where events go, signed with which secret, which events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    secret: SecretStr
    events: Annotated[list[EventType], Field(min_length=1)] = Field(
        default_factory=lambda: list(EVENT_TYPES)
    )
    # Seconds to wait for the endpoint's answer; no answer in time is retried later.
    timeout_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 10.0

    @model_validator(mode="before")
    @classmethod
    def _name_from_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("url"), str):
            return {**data, "name": default_name(data["url"])}
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value) or len(value) > MAX_NAME:
            raise ValueError(
                f"{value!r}: use lowercase letters, digits and single underscores "
                f'(at most {MAX_NAME} characters), e.g. "crm"'
            )
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http:// or https:// URL with a host, "
                'e.g. "https://crm.example.com/hooks/cxbot"'
            )
        return value

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        decode_secret(value.get_secret_value())
        return value

    @property
    def key(self) -> bytes:
        """The decoded signing key."""
        return decode_secret(self.secret.get_secret_value())


def check_unique_names(endpoints: Sequence[WebhookEndpoint]) -> None:
    """ValueError when two endpoints share a name (their queues would mix)."""
    seen: set[str] = set()
    for endpoint in endpoints:
        if endpoint.name in seen:
            raise ValueError(
                f"two endpoints are named {endpoint.name!r}; give each a different name"
            )
        seen.add(endpoint.name)


def merge_webhook_env(
    tables: Any, overrides: Sequence[tuple[str, str, str]], where: str
) -> tuple[list[dict[str, Any]], dict[tuple[int, str], str]]:
    """The file's `[[webhooks]]` tables with `CXBOT_WEBHOOKS__<NAME>__<KEY>` applied.

    `overrides`: (key after `CXBOT_WEBHOOKS__`, lowercased; variable name; value). Returns the
    tables and, for each (table index, key) an override set, the variable that set it.
    """
    if tables is None:
        tables = []
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(
            f"{where}: webhooks must be a list of tables: write [[webhooks]] above each endpoint"
        )
    merged = [dict(t) for t in tables]
    sources: dict[tuple[int, str], str] = {}
    for key, var, value in overrides:
        name, sep, field = key.partition("__")
        if not sep or not name or field not in WebhookEndpoint.model_fields or field == "name":
            known = ", ".join(k for k in WebhookEndpoint.model_fields if k != "name")
            raise ConfigError(
                f"environment variable {var}: expected CXBOT_WEBHOOKS__<NAME>__<KEY> with KEY "
                f"one of {known}"
            )
        index = next((i for i, t in enumerate(merged) if _table_name(t) == name), None)
        if index is None:
            merged.append({"name": name})
            index = len(merged) - 1
        coerced: Any = value
        if field == "events":
            coerced = [part.strip() for part in value.split(",") if part.strip()]
        merged[index][field] = coerced
        sources[(index, field)] = f"environment variable {var}"
    return merged, sources


def _table_name(table: dict[str, Any]) -> str:
    name = table.get("name")
    if isinstance(name, str) and name:
        return name.lower()
    url = table.get("url")
    return default_name(url) if isinstance(url, str) else ""
