"""Structured logs: one JSON object per line (opt-in, `[general] log_format = "json"`).

Each line carries `time`, `level`, `logger` and `message`, plus the fields bound for the work
under way — the `conversation_id` and `channel` of the turn being processed — so that a log
search finds every line of one conversation. Fields are bound in a context variable:
`log_scope` around a unit of work, `bind_log_fields` inside it once more is known; the scope's
end forgets both. Context variables follow `asyncio.to_thread` and tasks, not other threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

_FIELDS: ContextVar[Mapping[str, object]] = ContextVar(
    "cxbot_log_fields", default=MappingProxyType({})
)
# Attributes every LogRecord has: anything else on a record came from `extra=` and is kept.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@contextmanager
def log_scope(**fields: object) -> Iterator[None]:
    """Bind `fields` to every log line inside the block; on exit, what was bound before."""
    token = _FIELDS.set({**_FIELDS.get(), **fields})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bind_log_fields(**fields: object) -> None:
    """Add fields (None values are left out) until the enclosing `log_scope` ends."""
    _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}})


def log_fields() -> Mapping[str, object]:
    """The fields bound now."""
    return _FIELDS.get()


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, bound and `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's JSON line (non-JSON values are written as their `str`)."""
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(log_fields())
        data.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def use_json_logs(root: logging.Logger | None = None) -> None:
    """Write every handler of the root logger (standard error) as JSON lines."""
    for handler in (root or logging.getLogger()).handlers:
        handler.setFormatter(JsonFormatter())
