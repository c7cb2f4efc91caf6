"""`cxbot export responses`: survey responses as CSV or JSON Lines, streamed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.app import build_app
from bot.config import Settings
from bot.errors import CxbotError
from bot.quiet_hours import zone_named
from bot.report_commands import day_argument
from bot.response_export import FORMATS, EmptyExportError, open_export, write_export
from bot.trends import utc_range
from storage.response_export import ResponseFilter


def add_export_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
) -> None:
    """`cxbot export responses [--since DATE] [--until DATE] [--format csv|jsonl] ...`."""
    export = sub.add_parser("export", parents=[common], help="export stored data")
    what = export.add_subparsers(dest="export_command", required=True, metavar="WHAT")
    responses = what.add_parser(
        "responses",
        parents=[common],
        help="one row per survey, one column per question, with sentiment and flags",
    )
    responses.add_argument(
        "--since", type=day_argument, metavar="DATE", help="surveys started on or after this day"
    )
    responses.add_argument(
        "--until", type=day_argument, metavar="DATE", help="surveys started up to this day"
    )
    responses.add_argument("--tz", metavar="ZONE", help="time zone of the days (default UTC)")
    responses.add_argument("--flow", metavar="FLOW_ID", help="only this flow")
    responses.add_argument("--channel", metavar="CHANNEL", help="only this channel")
    responses.add_argument("--touchpoint", metavar="NAME", help="only this touchpoint")
    responses.add_argument("--format", choices=FORMATS, default="csv", help="default csv")
    responses.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write here (default: standard output)"
    )


def export_command(settings: Settings, args: argparse.Namespace) -> int:
    """Write the responses; a count to standard error. An empty range is one clear error."""
    zone = args.tz or "UTC"
    zone_named(zone)
    if args.since and args.until and args.since > args.until:
        raise CxbotError(f"--since {args.since} is after --until {args.until}: no day is in both")
    since, until = utc_range(args.since, args.until, zone)
    where = ResponseFilter(
        since=since,
        until=until,
        flow_id=args.flow,
        channel=args.channel,
        touchpoint=args.touchpoint,
    )
    app = build_app(settings)
    try:
        try:
            export = open_export(app.db, where)
        except EmptyExportError:
            raise CxbotError(f"no survey responses {_described(args)}: nothing written") from None
        if args.output is None:
            written = write_export(export, args.format, sys.stdout)
        else:
            partial = args.output.with_name(args.output.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8", newline="") as out:
                    written = write_export(export, args.format, out)
            except OSError as exc:
                raise CxbotError(f"cannot write {args.output}: {exc.strerror or exc}") from None
            partial.replace(args.output)  # a reader never sees half a file
    finally:
        app.close()
    where_to = args.output or "standard output"
    print(f"{written} response(s) written to {where_to} ({args.format})", file=sys.stderr)
    return 0


def _described(args: argparse.Namespace) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("since", args.since),
            ("until", args.until),
            ("in flow", args.flow),
            ("on channel", args.channel),
            ("at touchpoint", args.touchpoint),
        )
        if value
    ]
    return " ".join(parts) if parts else "are stored yet"
