"""JSON logs: one object per line, with the fields bound for the turn under way."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.console import MemoryChannel
from bot.app import build_app, configure_logging
from bot.config import load_settings
from bot.log_format import JsonFormatter, bind_log_fields, log_fields, log_scope
from storage.database import transaction
from storage.tables import Conversation


def line(record: logging.LogRecord) -> dict[str, object]:
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def test_a_record_as_json_with_bound_and_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "bot.x", "levelname": "INFO", "msg": "hello %s", "args": ("ann",), "n": 3}
    )
    with log_scope(channel="telegram"):
        bind_log_fields(conversation_id=7, ignored=None)
        got = line(record)
    assert {k: v for k, v in got.items() if k != "time"} == {
        "level": "INFO",
        "logger": "bot.x",
        "message": "hello ann",
        "channel": "telegram",
        "conversation_id": 7,
        "n": 3,
    }
    assert log_fields() == {}  # the scope's end forgets what was bound inside it


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", None, sys.exc_info())
    got = line(record)
    assert got["message"] == "failed"
    assert "ValueError: boom" in str(got["exception"])


@pytest.fixture
def json_root(tmp_path: Path) -> Iterator[io.StringIO]:
    """The root logger configured from `log_format = "json"`, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    root.handlers = [logging.StreamHandler(stream)]
    settings = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_GENERAL__LOG_FORMAT": "json",
            "CXBOT_GENERAL__LOG_LEVEL": "DEBUG",
            "CXBOT_SENTIMENT__ENABLED": "false",
        },
    )
    configure_logging(settings)
    root.setLevel(logging.DEBUG)  # basicConfig leaves the level alone once handlers exist
    yield stream
    root.handlers, _ = saved
    root.setLevel(saved[1])


async def test_a_turns_log_lines_carry_its_conversation_id(
    json_root: io.StringIO, tmp_path: Path
) -> None:
    settings = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_SENTIMENT__ENABLED": "false",
        },
    )
    app = build_app(settings)
    try:
        channel = MemoryChannel(app.engine.handle, user_id="ann")
        channel.receive(await app.engine.begin(channel="console", user_id="ann"))
        await channel.push("9")
        with transaction(app.db) as s:
            conversation_id = s.exec(select(Conversation.id)).one()
    finally:
        app.close()
    lines = [json.loads(text) for text in json_root.getvalue().splitlines()]
    turns = [x for x in lines if x["logger"] == "bot.engine" and "turn:" in str(x["message"])]
    assert turns, lines
    assert turns[-1]["conversation_id"] == conversation_id
    assert turns[-1]["channel"] == "console"
