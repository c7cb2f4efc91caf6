"""Survey responses as CSV or JSON Lines: one row per survey, one column per question.

Columns: `response_id`, `started_at`, `completed_at`, `state`, `channel`, `customer_id`,
`flow_id`, `flow_version`, `locale`, `touchpoint`, `context` (JSON), then each question
answered in the range in first-asked order (its value; empty when skipped or not asked), a text
question followed by `<id>_sentiment` and `<id>_confidence` (the label people see: a correction
wins over the model, whose confidence is then empty), then `flagged`, `flag_reasons` (codes
joined by `;`) and `review_status`.

Rows are produced a chunk of surveys at a time (storage.response_export), so an export of
100,000 responses streams in bounded memory. In CSV, a text cell that a spreadsheet would run
as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from storage.database import Database, transaction
from storage.response_export import (
    ResponseFilter,
    StoredResponse,
    count_responses,
    question_columns,
    response_chunk,
)

FIXED = (
    "response_id",
    "started_at",
    "completed_at",
    "state",
    "channel",
    "customer_id",
    "flow_id",
    "flow_version",
    "locale",
    "touchpoint",
    "context",
)
TRAILING = ("flagged", "flag_reasons", "review_status")
FORMATS = ("csv", "jsonl")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class EmptyExportError(LookupError):
    """No response matches the filter (callers say so instead of writing an empty file)."""


@dataclass(frozen=True, slots=True)
class Export:
    """An export under way: its columns, how many rows, and the rows as they are read."""

    columns: list[str]
    total: int
    rows: Iterator[dict[str, Any]]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _row(response: StoredResponse, questions: list[tuple[str, str]]) -> dict[str, Any]:
    conv = response.conversation
    row: dict[str, Any] = {
        "response_id": conv.id,
        "started_at": _iso(conv.started_at),
        "completed_at": _iso(conv.completed_at),
        "state": conv.state,
        "channel": conv.channel,
        "customer_id": conv.customer_id,
        "flow_id": conv.flow_id,
        "flow_version": conv.flow_version,
        "locale": conv.locale,
        "touchpoint": response.touchpoint,
        "context": conv.context or {},
    }
    given = {a.question_id: a for a in response.answers if not a.late}
    for question_id, question_type in questions:
        answer = given.get(question_id)
        value: Any = None
        if answer is not None and not answer.skipped:
            value = answer.value_int if answer.value_int is not None else answer.value_text
        row[question_id] = value
        if question_type == "text":
            shown = response.labels.get(answer.id) if answer is not None and answer.id else None
            row[f"{question_id}_sentiment"] = shown.label if shown is not None else None
            row[f"{question_id}_confidence"] = (
                round(shown.confidence, 4)
                if shown is not None and shown.confidence is not None
                else None
            )
    review = response.review
    row["flagged"] = review is not None
    row["flag_reasons"] = (
        sorted({str(r.get("code")) for r in review.reasons}) if review is not None else []
    )
    row["review_status"] = review.status if review is not None else None
    return row


def columns_for(questions: list[tuple[str, str]]) -> list[str]:
    """Every column of an export with these questions, in order."""
    cols = list(FIXED)
    for question_id, question_type in questions:
        cols.append(question_id)
        if question_type == "text":
            cols += [f"{question_id}_sentiment", f"{question_id}_confidence"]
    return [*cols, *TRAILING]


def open_export(db: Database, where: ResponseFilter) -> Export:
    """Start an export: EmptyExportError when nothing matches; the rows are read lazily, a chunk
    of surveys per short transaction (a survey stored meanwhile with a higher id may appear)."""
    with transaction(db) as session:
        total = count_responses(session, where)
        questions = question_columns(session, where) if total else []
    if not total:
        raise EmptyExportError("no survey responses match")

    def rows() -> Iterator[dict[str, Any]]:
        # One short transaction per chunk: a slow reader of the rows never holds the database
        # (on SQLite, the process's writer lock) between chunks.
        after = 0
        while True:
            with transaction(db) as session:
                chunk = response_chunk(session, where, after=after)
            if not chunk:
                return
            for response in chunk:
                yield _row(response, questions)
            after = chunk[-1].conversation.id or after

    return Export(columns=columns_for(questions), total=total, rows=rows())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ";".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return str(value)


def csv_chunks(export: Export, *, rows_per_chunk: int = 200) -> Iterator[str]:
    """The export as CSV text, header first, a few hundred rows per piece (for streaming)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(export.columns)
    pending = 0
    for row in export.rows:
        writer.writerow([_cell(row.get(c)) for c in export.columns])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def jsonl_chunks(export: Export, *, rows_per_chunk: int = 200) -> Iterator[str]:
    """The export as JSON Lines (one object per response), a few hundred lines per piece."""
    lines: list[str] = []
    for row in export.rows:
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if len(lines) >= rows_per_chunk:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


def write_export(export: Export, fmt: str, out: TextIO) -> int:
    """Write the whole export to `out` in `fmt` (csv / jsonl); returns the rows written."""
    pieces = csv_chunks(export) if fmt == "csv" else jsonl_chunks(export)
    for piece in pieces:
        out.write(piece)
    return export.total
