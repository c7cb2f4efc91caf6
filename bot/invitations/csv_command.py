"""`cxbot invite --csv FILE [--result FILE] [--source NAME]`: the command around
`bot.invitations.csv_import` — checks, progress on standard error, the summary on standard
output, and the exit status: 0 every row accepted, 2 some rows refused (the result file says
why), 1 nothing done (the file cannot be read, no channel configured, a bad option)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.app import App
from bot.config import Settings
from bot.errors import CxbotError
from bot.invitations.csv_import import (
    CSV_SOURCE,
    CsvFileError,
    delivery_note,
    import_sheet,
    open_results,
    read_sheet,
    result_path,
    result_writer,
)
from bot.invitations.service import Clock, Invitations
from bot.progress import progress_for

_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def configured_channels(settings: Settings) -> list[str]:
    """The chat channels with credentials here: the only ones an invitation can go out on."""
    channels = []
    if settings.telegram.token is not None:
        channels.append("telegram")
    if settings.slack.bot_token is not None:
        channels.append("slack")
    return channels


def run_csv_import(
    app: App,
    *,
    path: Path,
    result: Path | None,
    source: str | None,
    out: TextIO,
    err: TextIO,
    clock: Clock | None = None,
) -> int:
    """Import the file's invitations; the exit status. Raises CxbotError (exit 1) before
    anything is stored when the file, an option or the configuration does not allow it."""
    source = source if source is not None else CSV_SOURCE
    if not _SOURCE.fullmatch(source):
        raise CxbotError(
            f"--source {source!r}: 1-64 letters, digits and _ . : - (starting with a letter or "
            "digit)"
        )
    channels = configured_channels(app.settings)
    if not channels:
        raise CxbotError(
            "no chat channel is configured, so no invitation could be delivered: set "
            "[telegram] token or [slack] bot_token (e.g. CXBOT_TELEGRAM__TOKEN)"
        )
    result = result if result is not None else result_path(path)
    if result.resolve() == path.resolve():
        raise CsvFileError(f"{result}: the result file would overwrite the input; pick another")
    sheet = read_sheet(path)  # the whole file, checked before any row is stored
    invitations = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=channels,
        clock=clock or (lambda: datetime.now(UTC)),
    )
    with open_results(result) as stream, progress_for(len(sheet.rows), stream=err) as progress:
        summary = import_sheet(
            invitations, sheet, source=source, record=result_writer(stream), progress=progress
        )
    print(summary.line(), file=out)
    note = delivery_note(summary)
    if note:
        print(note, file=out)
    if summary.errors:
        print(f"{summary.errors} row(s) refused; see why in {result}", file=out)
    else:
        print(f"results: {result}", file=out)
    return summary.exit_status
