"""`cxbot export responses`: columns, sentiment and flags per survey, spreadsheet-safe CSV, clear
errors for empty ranges, and streaming in bounded memory over a large range."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlmodel import select

from bot.app import App, build_app
from bot.config import load_settings
from bot.response_export import EmptyExportError, open_export, write_export
from storage.database import transaction
from storage.response_export import ResponseFilter
from storage.tables import Answer, Conversation, Customer, Invitation, SentimentScore
from tests.bot.test_engine import open_survey
from tests.fakes.cli_runner import Run, cli_runner


async def test_one_row_per_survey_with_sentiment_flags_and_touchpoint(app: App) -> None:
    ann = await open_survey(app, "ann", context={"order_id": "A-1"})
    for line in ["3", "=cmd|' /C calc'!A0", "2", "1", ""]:
        await ann.push(line)
    bob = await open_survey(app, "bob")
    await bob.push("10")
    with transaction(app.db) as s:
        text = s.exec(select(Answer).where(Answer.question_id == "fix_first")).one()
        assert text.id is not None
        s.add(
            SentimentScore(
                answer_id=text.id,
                label="negative",
                confidence=0.91234,
                model_id="m",
                model_version="v1",
            )
        )
        conv = s.get(Conversation, text.conversation_id)
        assert conv is not None
        s.add(
            Invitation(
                source="cli",
                interaction_id="i-1",
                customer_id=conv.customer_id,
                channel="console",
                user_id="ann",
                touchpoint="delivery",
                flow_id=conv.flow_id,
                conversation_id=conv.id,
            )
        )
    export = open_export(app.db, ResponseFilter())
    assert export.total == 2
    out = io.StringIO()
    write_export(export, "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    first, second = rows
    assert first["nps"] == "3" and first["ces"] == "2" and first["csat"] == "1"
    assert first["fix_first"] == "'=cmd|' /C calc'!A0"  # never run as a formula
    assert (first["fix_first_sentiment"], first["fix_first_confidence"]) == ("negative", "0.9123")
    assert first["touchpoint"] == "delivery"
    assert json.loads(first["context"]) == {"order_id": "A-1"}
    assert first["flagged"] == "yes" and "nps_detractor" in first["flag_reasons"].split(";")
    assert first["review_status"] == "open" and first["state"] == "completed"
    assert second["nps"] == "10" and second["flagged"] == "no" and second["state"] == "active"
    assert second["fix_first"] == "" and second["touchpoint"] == ""
    # JSON Lines: the same, typed, text as typed.
    out = io.StringIO()
    write_export(open_export(app.db, ResponseFilter(flow_id="post_interaction")), "jsonl", out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["fix_first"] == "=cmd|' /C calc'!A0" and lines[0]["nps"] == 3
    assert lines[0]["flag_reasons"] and lines[1]["flagged"] is False
    with pytest.raises(EmptyExportError):
        open_export(app.db, ResponseFilter(touchpoint="nowhere"))


def _seed(app: App, surveys: int) -> None:
    """`surveys` completed surveys of one customer, three answers each, by bulk inserts."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with transaction(app.db) as s:
        customer = Customer(channel="console", external_id="bulk")
        s.add(customer)
        s.flush()
        base = dict(customer_id=customer.id, channel="console", flow_id="f", flow_version=1)
        s.execute(
            insert(Conversation),
            [
                {
                    **base,
                    "state": "completed",
                    "started_at": start + timedelta(minutes=i),
                    "locale": "en",
                    "context": {"order": f"O-{i}"},
                }
                for i in range(surveys)
            ],
        )
        ids = [c.id for c in s.exec(select(Conversation))]
        s.execute(
            insert(Answer),
            [
                {
                    **base,
                    "conversation_id": cid,
                    "question_id": q,
                    "question_type": t,
                    "value_int": v,
                    "value_text": txt,
                    "raw_text": txt or str(v),
                }
                for cid in ids
                for q, t, v, txt in (
                    ("nps", "nps", 7, None),
                    ("csat", "csat", 4, None),
                    ("comment", "text", None, "the courier was friendly and on time " * 3),
                )
            ],
        )


class _Counter(io.TextIOBase):
    """A sink that keeps only the number of characters written (the test measures memory)."""

    def __init__(self) -> None:
        self.chars = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        self.lines += text.count("\n")
        return len(text)


def _peak_while_exporting(app: App) -> tuple[int, int]:
    sink = _Counter()
    tracemalloc.start()
    try:
        write_export(open_export(app.db, ResponseFilter()), "csv", sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, sink.lines


def test_a_large_export_streams_in_bounded_memory(tmp_path: Path) -> None:
    peaks = {}
    for surveys in (1_000, 10_000):
        app = build_app(
            load_settings(None, environ={"CXBOT_GENERAL__DATA_DIR": str(tmp_path / str(surveys))})
        )
        try:
            _seed(app, surveys)
            peak, lines = _peak_while_exporting(app)
        finally:
            app.close()
        assert lines == surveys + 1  # the header and every survey
        peaks[surveys] = peak
    # Ten times the rows, about the same memory: chunks are read, written and let go.
    assert peaks[10_000] < 2 * peaks[1_000], peaks


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    return cli_runner(capsys)


def test_export_command(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run("export", "responses")
    assert code == 1 and "no survey responses are stored yet: nothing written" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("9\nfast\n6\n5\n\n"))
    assert run("chat", "--customer", "ann")[0] == 0
    target = tmp_path / "out.csv"
    code, _, err = run("export", "responses", "--since", "2020-01-01", "-o", str(target))
    assert code == 0 and "1 response(s) written" in err
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["nps"] for r in rows] == ["9"] and rows[0]["liked_most"] == "fast"
    code, out, _ = run("export", "responses", "--format", "jsonl")
    assert code == 0 and json.loads(out)["csat"] == 5
    code, _, err = run("export", "responses", "--since", "2099-01-01")
    assert code == 1 and "since 2099-01-01" in err
    code, _, err = run("export", "responses", "--since", "2026-12-02", "--until", "2026-12-01")
    assert code == 1 and "after --until" in err
    assert not (tmp_path / "out.csv.partial").exists()
