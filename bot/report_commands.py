"""`cxbot report --by day|week|month`: the NPS / CES / CSAT trend with margins of error."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from bot.app import build_app
from bot.config import Settings
from bot.errors import CxbotError
from bot.quiet_hours import zone_named
from bot.trend_plot import plot_trend
from bot.trends import MIN_N, Period, build_trend, format_trend, utc_range
from storage.database import transaction
from storage.reports import score_answers


def day_argument(text: str) -> date:
    """An argparse type: a calendar day as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def add_trend_arguments(report: argparse.ArgumentParser) -> None:
    """The trend options of `cxbot report`."""
    report.add_argument(
        "--by",
        choices=[p.value for p in Period],
        help="the trend by day, week (from Monday) or month, each point with n and ± margin",
    )
    report.add_argument(
        "--since", type=day_argument, metavar="DATE", help="from this day on (YYYY-MM-DD)"
    )
    report.add_argument(
        "--until", type=day_argument, metavar="DATE", help="up to this day, included"
    )
    report.add_argument(
        "--tz",
        metavar="ZONE",
        help="time zone of the days (IANA name; default: [invitations] default_time_zone)",
    )
    report.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        help="also draw the trend to FILE.png or FILE.svg (needs --by)",
    )
    report.add_argument(
        "--min-n",
        type=int,
        default=MIN_N,
        metavar="N",
        help=f"points with fewer answers get no margin of error (default {MIN_N})",
    )


def trend_command(settings: Settings, args: argparse.Namespace) -> int:
    """Print the trend (`--json`: one object `{"by", "series": [...]}`, oldest first)."""
    zone = args.tz or settings.invitations.default_time_zone
    zone_named(zone)  # ConfigError naming the zone when it is unknown
    if args.since and args.until and args.since > args.until:
        raise CxbotError(f"--since {args.since} is after --until {args.until}: no day is in both")
    if args.min_n < 1:
        raise CxbotError("--min-n must be at least 1")
    start, end = utc_range(args.since, args.until, zone)
    app = build_app(settings)
    try:
        with transaction(app.db) as session:
            rows = score_answers(
                session, flow_id=args.flow, channel=args.channel, since=start, until=end
            )
    finally:
        app.close()
    trend = build_trend(
        rows,
        by=Period(args.by),
        zone=zone,
        since=args.since,
        until=args.until,
        min_n=args.min_n,
    )
    if args.plot is not None:
        plot_trend(trend, args.plot)
    if args.json:
        print(json.dumps(trend.to_dict(), indent=2))
    else:
        print(format_trend(trend))
    if args.plot is not None:
        print(f"trend drawn to {args.plot}", file=sys.stderr)
    return 0
