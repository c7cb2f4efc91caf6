"""`cxbot invite --csv FILE`: invitations in bulk from a CSV file.

Each row is one request to the same `Invitations` service as the REST API — the same checks,
the same fatigue rules, ONE transaction per row, idempotent on (source, interaction_id) with
source `csv` unless `--source` says otherwise — so importing a file twice sends nothing twice,
and a broken row is refused alone (nothing of it stored) while the others go on.

The file: UTF-8 (a spreadsheet's byte-order mark is fine), a header row, then one invitation a
row, separated by commas (or by semicolons or tabs, when the header row uses those). Columns
`channel`, `user_id`, `touchpoint`, `interaction_id` are required; `flow_id`, `send_after`
(seconds from now, or an ISO-8601 time with its offset) and `time_zone` are optional; every
other column is a context field of the invitation, named as the column (a `context.` prefix is
taken off, for a field whose name is one of the columns above). Empty context cells are left
out. A file that cannot be read as such at all (missing, not text, no such header) is refused
before any row is stored.

Rows due now are decided here: the survey is opened and its first messages are written to the
outbox with the invitation, exactly as the API does; `cxbot serve`'s delivery worker sends them
(within a second when it runs), so a file of thousands of rows is not held up by the platforms'
rate limits. Scheduled rows are sent by `cxbot serve`'s scheduler when due.

Each row's outcome is written, as it is decided, to a result file (CSV): its row number (the
header is row 1, as a spreadsheet counts), interaction id, status (`scheduled`, `sent`,
`withheld` or `error`), reason, detail (for an error: the column and what is wrong with it),
the invitation's id, and whether it repeats an earlier import.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from bot.errors import CxbotError
from bot.invitations.service import (
    InteractionConflict,
    InvalidInvitation,
    InvitationRequest,
    Invitations,
    Problem,
)
from bot.progress import Progress

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("channel", "user_id", "touchpoint", "interaction_id")
OPTIONAL_COLUMNS = ("flow_id", "send_after", "time_zone")
CONTEXT_PREFIX = "context."
CSV_SOURCE = "csv"
RESULT_COLUMNS = (
    "row",
    "interaction_id",
    "status",
    "reason",
    "detail",
    "invitation_id",
    "repeat",
)
DELIMITERS = ",;\t"
MAX_SEND_AFTER_SECONDS = 365 * 86400

# The status of a row that was not accepted, and its reasons.
ERROR = "error"
INVALID = "invalid"  # a cell is wrong: the detail names the column
CONFLICT = "conflict"  # the interaction id was used for another customer or touchpoint
FAILED = "failed"  # an unexpected error while storing it (nothing of it was stored)


class CsvFileError(CxbotError):
    """The file cannot be read as invitations at all; nothing was stored."""


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One data row: its number (the header is row 1) and its cells as written."""

    number: int
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sheet:
    """A whole CSV file, read and checked before any row is stored."""

    path: Path
    header: tuple[str, ...]
    rows: list[SheetRow]
    # The context field each context column gives, by column position.
    context: dict[int, str]

    def column(self, name: str) -> int:
        """The position of a named column (-1: absent)."""
        return self.header.index(name) if name in self.header else -1

    def context_column(self, key: str) -> str:
        """The column that gives context field `key` (for messages about it)."""
        for position, given in self.context.items():
            if given == key:
                return self.header[position]
        return f"{CONTEXT_PREFIX}{key}"


def read_sheet(path: Path) -> Sheet:
    """Read and check the whole file; CsvFileError with one clear message when it cannot be
    read as invitations (missing, not text, not CSV, a required column missing)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CsvFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise CsvFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise CsvFileError(f"{path}: not a CSV file (it holds binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvFileError(
            f"{path}: line {line}: not UTF-8 text (save the file as CSV UTF-8)"
        ) from None
    first_line = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count) if first_line.strip() else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    try:
        records.extend(reader)
    except csv.Error as exc:
        raise CsvFileError(f"{path}: line {reader.line_num}: not valid CSV: {exc}") from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise CsvFileError(
            f"{path}: no header row; the first row names the columns: "
            f"{', '.join(REQUIRED_COLUMNS)} (required), {', '.join(OPTIONAL_COLUMNS)} and "
            "context fields (optional)"
        )
    header = tuple(cell.strip() for cell in records[0])
    _check_header(path, header)
    rows = [
        SheetRow(number, tuple(cells))
        for number, cells in enumerate(records[1:], start=2)
        if any(cell.strip() for cell in cells)  # blank lines are skipped, still counted
    ]
    return Sheet(path=path, header=header, rows=rows, context=_context_columns(path, header))


def _check_header(path: Path, header: tuple[str, ...]) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        found = ", ".join(name for name in header if name) or "none"
        raise CsvFileError(
            f"{path}: the header row lacks the column(s) {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_COLUMNS)}; found: {found})"
        )
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise CsvFileError(f"{path}: column {name!r} appears twice in the header row")
        seen.add(name)


def _context_columns(path: Path, header: tuple[str, ...]) -> dict[int, str]:
    named = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    context: dict[int, str] = {}
    for position, name in enumerate(header):
        if not name or name in named:
            continue
        key = name.removeprefix(CONTEXT_PREFIX) if name.startswith(CONTEXT_PREFIX) else name
        if not key:
            raise CsvFileError(f"{path}: column {name!r} names no context field")
        if key in context.values():
            raise CsvFileError(
                f"{path}: two columns give the context field {key!r} ({key} and "
                f"{CONTEXT_PREFIX}{key}); keep one"
            )
        context[position] = key
    return context


# -- one row ----------------------------------------------------------------------------------


def _send_after(text: str, now: datetime) -> datetime:
    """Seconds from now, or an ISO-8601 time; ValueError saying what was expected."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        if seconds < 0:
            raise ValueError("a number of seconds must be 0 or more")
        if seconds > MAX_SEND_AFTER_SECONDS:
            raise ValueError(f"at most a year ({MAX_SEND_AFTER_SECONDS} seconds) ahead")
        return now + timedelta(seconds=seconds)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is neither a number of seconds nor an ISO-8601 time "
            "(e.g. 3600 or 2026-12-01T09:30:00+01:00)"
        ) from None


def row_request(
    sheet: Sheet, row: SheetRow, *, now: datetime
) -> tuple[InvitationRequest | None, list[Problem]]:
    """The request a row makes, or the problems that keep it from being one (each naming its
    column)."""
    if len(row.cells) != len(sheet.header):
        return None, [
            Problem(
                "row",
                f"has {len(row.cells)} cells but the header row has {len(sheet.header)} "
                "columns (a missing or extra separator?)",
            )
        ]

    def cell(name: str) -> str:
        position = sheet.column(name)
        return row.cells[position].strip() if position >= 0 else ""

    problems = [
        Problem(name, "is required; the cell is empty")
        for name in REQUIRED_COLUMNS
        if not cell(name)
    ]
    for position, (name, value) in enumerate(zip(sheet.header, row.cells, strict=True)):
        if not name and value.strip():
            problems.append(
                Problem(f"column {position + 1}", "holds a value but has no name in the header row")
            )
    send_after = None
    if cell("send_after"):
        try:
            send_after = _send_after(cell("send_after"), now)
        except ValueError as exc:
            problems.append(Problem("send_after", str(exc)))
    if problems:
        return None, problems
    context = {
        key: row.cells[position].strip()
        for position, key in sheet.context.items()
        if row.cells[position].strip()
    }
    request = InvitationRequest(
        channel=cell("channel"),
        user_id=cell("user_id"),
        touchpoint=cell("touchpoint"),
        interaction_id=cell("interaction_id"),
        flow_id=cell("flow_id") or None,
        context=context,
        send_after=send_after,
        time_zone=cell("time_zone") or None,
    )
    return request, []


def _in_columns(sheet: Sheet, problems: Sequence[Problem]) -> str:
    """The service's problems named by the file's columns (`context.KEY` → its column)."""
    parts = []
    for problem in problems:
        where = problem.field
        if where.startswith(CONTEXT_PREFIX):
            where = sheet.context_column(where.removeprefix(CONTEXT_PREFIX))
        elif where == "context":
            where = "context columns"
        parts.append(f"{where}: {problem.message}")
    return "; ".join(parts)


# -- the whole file -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowResult:
    """What became of one row (a line of the result file)."""

    row: int
    interaction_id: str
    status: str  # scheduled / sent / withheld / error
    reason: str | None = None
    detail: str | None = None
    invitation_id: int | None = None
    repeat: bool = False

    def cells(self) -> list[str]:
        """The result file's cells, in `RESULT_COLUMNS` order."""
        return [
            str(self.row),
            self.interaction_id,
            self.status,
            self.reason or "",
            self.detail or "",
            "" if self.invitation_id is None else str(self.invitation_id),
            "yes" if self.repeat else "no",
        ]


@dataclass(slots=True)
class ImportSummary:
    """Counts of an import: rows by status, by (status, reason), repeats, and new sends."""

    rows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    repeats: int = 0
    queued: int = 0  # new surveys whose first messages this import wrote to the outbox
    new_scheduled: int = 0

    def add(self, result: RowResult) -> None:
        """Count one row's result."""
        self.rows += 1
        self.by_status[result.status] += 1
        if result.reason:
            self.by_reason[result.status, result.reason] += 1
        if result.repeat:
            self.repeats += 1
        elif result.status == "sent":
            self.queued += 1
        elif result.status == "scheduled":
            self.new_scheduled += 1

    @property
    def errors(self) -> int:
        """Rows that were not accepted."""
        return self.by_status[ERROR]

    @property
    def exit_status(self) -> int:
        """0 when every row was accepted (sent, scheduled or withheld), 2 when some were not."""
        return 2 if self.errors else 0

    def line(self) -> str:
        """`N rows: a sent, b scheduled, c withheld (cooldown c), d error (invalid d); …`."""
        parts = []
        for status in ("sent", "scheduled", "withheld", ERROR):
            n = self.by_status[status]
            reasons = sorted((r, k) for (s, r), k in self.by_reason.items() if s == status)
            detail = f" ({', '.join(f'{r} {k}' for r, k in reasons)})" if reasons else ""
            parts.append(f"{n} {status}{detail}")
        repeats = f"; {self.repeats} repeat(s) of earlier imports" if self.repeats else ""
        return f"{self.rows} rows: {', '.join(parts)}{repeats}"


def import_sheet(
    invitations: Invitations,
    sheet: Sheet,
    *,
    source: str,
    record: Callable[[RowResult], None],
    progress: Progress | None = None,
) -> ImportSummary:
    """Create every row's invitation in order, one transaction each; `record` gets each row's
    result as it is decided. A bad row is recorded as an error and the next row goes on."""
    summary = ImportSummary()
    for done, row in enumerate(sheet.rows, start=1):
        result = _import_row(invitations, sheet, row, source=source)
        record(result)
        summary.add(result)
        if progress is not None:
            progress.update(done)
    return summary


def _import_row(invitations: Invitations, sheet: Sheet, row: SheetRow, *, source: str) -> RowResult:
    position = sheet.column("interaction_id")
    interaction = row.cells[position].strip() if 0 <= position < len(row.cells) else ""
    request, problems = row_request(sheet, row, now=invitations.clock())
    if request is None:
        return RowResult(row.number, interaction, ERROR, INVALID, _in_columns(sheet, problems))
    try:
        created = invitations.create_sync(request, source=source)
    except InvalidInvitation as exc:
        return RowResult(row.number, interaction, ERROR, INVALID, _in_columns(sheet, exc.problems))
    except InteractionConflict as exc:
        return RowResult(row.number, interaction, ERROR, CONFLICT, f"interaction_id: {exc}")
    except Exception as exc:  # the row's transaction was rolled back; the next row goes on
        log.exception("row %d of %s could not be stored", row.number, sheet.path)
        return RowResult(row.number, interaction, ERROR, FAILED, f"{type(exc).__name__}: {exc}")
    return RowResult(
        row.number,
        interaction,
        created.status,
        created.reason,
        created.detail,
        created.id,
        repeat=not created.created,
    )


def result_path(path: Path) -> Path:
    """Where the results go by default: next to the input, `invites.csv` → `invites.results.csv`."""
    stem = path.stem if path.suffix.lower() == ".csv" else path.name
    return path.with_name(f"{stem}.results.csv")


def open_results(path: Path) -> TextIO:
    """The result file, opened for writing with its header row written (CsvFileError when it
    cannot be written)."""
    try:
        stream = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise CsvFileError(f"{path}: cannot write the result file: {exc.strerror or exc}") from None
    csv.writer(stream).writerow(RESULT_COLUMNS)
    stream.flush()
    return stream


def result_writer(stream: TextIO) -> Callable[[RowResult], None]:
    """Write each result as its own line, flushed: an interrupted import leaves the rows done."""
    writer = csv.writer(stream)

    def record(result: RowResult) -> None:
        writer.writerow(result.cells())
        stream.flush()

    return record


def delivery_note(summary: ImportSummary) -> str:
    """What happens next to the accepted rows: this command writes, `cxbot serve` sends."""
    notes = []
    if summary.queued:
        notes.append(
            f"{summary.queued} survey(s) queued for delivery: `cxbot serve` sends them "
            "(this command sends nothing itself)"
        )
    if summary.new_scheduled:
        notes.append(
            f"{summary.new_scheduled} scheduled invitation(s): `cxbot serve` sends each at its time"
        )
    return "; ".join(notes)
