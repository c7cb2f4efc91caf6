"""Keep secrets out of the logs at every level: the configured ones, and any that look like one.

The SDKs log what they send at DEBUG: httpx writes each request's URL (the Telegram token is part
of it), python-telegram-bot writes setWebhook's parameters (the webhook secret), and error
messages quote URLs. A `logging.Filter` on a logger sees only the records made by that very
logger (not by `httpcore.http11` under a filter on `httpcore`), and one on a handler misses
handlers added later; so redaction happens where every record is made, in the log record
factory, before any filter, handler or formatter sees it. `SecretFilter` is the same redaction
as a filter, for handlers that receive records made elsewhere.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from bot.config import Settings
from storage.database import database_password

REDACTED = "[REDACTED]"
# Shorter values are not secrets anyone configures and would blank ordinary words.
MIN_SECRET_LENGTH = 8
# Secrets recognisable by their shape, configured or not: Telegram bot tokens, Slack tokens,
# cxbot API keys, Standard Webhooks secrets.
SECRET_SHAPES = re.compile(
    r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{30,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bxapp-[A-Za-z0-9-]{10,}"
    r"|\bcxk_[A-Za-z0-9_-]{20,}"
    r"|\bwhsec_[A-Za-z0-9+/=]{16,}"
)


class Redactor:
    """Replaces the given secret values (and their URL-encoded forms) and secret-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Redact these values from now on, besides those given before."""
        for value in secrets:
            if len(value) >= MIN_SECRET_LENGTH:
                self._known |= {value, quote(value, safe="")}
        # Longest first: a secret containing another is replaced whole.
        ordered = sorted(self._known, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by REDACTED."""
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        return SECRET_SHAPES.sub(REDACTED, text)

    def redact_record(self, record: logging.LogRecord) -> None:
        """Redact the record's message and exception text in place (formatting it now)."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for logging's own error report
            return
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            clean = self.redact(text)
            if clean != text:
                # logging.Formatter prints `exc_text` when set; dropping `exc_info` keeps a
                # formatter that formats it itself from printing the secret again.
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)


class SecretFilter(logging.Filter):
    """A filter that redacts each record (and lets it through)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always True."""
        self.redactor.redact_record(record)
        return True


_redactor: Redactor | None = None


def install_redaction(secrets: Iterable[str]) -> Redactor:
    """Redact these secrets from every log record made from now on (idempotent: a second call
    adds its secrets to the same redactor)."""
    global _redactor
    if _redactor is not None:
        _redactor.update(secrets)
        return _redactor
    redactor = Redactor(secrets)
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redactor.redact_record(record)
        return record

    logging.setLogRecordFactory(make_record)
    _redactor = redactor
    return redactor


def redact(text: str) -> str:
    """`text` without the installed secrets or secret-shaped text (for error messages stored)."""
    return (_redactor or Redactor()).redact(text)


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value in the settings: channel tokens and secrets, webhook secrets, and the
    database URL's password."""
    values = [
        settings.telegram.token,
        settings.telegram.secret_token,
        settings.slack.bot_token,
        settings.slack.app_token,
        settings.slack.signing_secret,
        *(hook.secret for hook in settings.webhooks),
    ]
    found = [v.get_secret_value() for v in values if v is not None]
    password = database_password(settings.database_url)
    return found + ([password] if password else [])
