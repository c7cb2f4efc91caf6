"""Benchmark the analytics page's data and the full CSV export over a year of responses.

    python bench/dashboard.py [--responses 100000] [--quick] [--rounds 20] [--exports 3]
                              [--postgres-url URL | --no-postgres | --no-sqlite]

Seeds a scratch database (SQLite in a temporary folder; PostgreSQL as a new database on the
server of `--postgres-url`, dropped afterwards) with `--responses` surveys over the last 365 days
(storage.bench_seed: NPS / CES / CSAT mixes that drift over the year, comments in English,
Spanish and German with sentiment labels, touchpoints, two flows, two channels, a `plan`
segment, review items with response times), then times:

- the page's data, `bot.analytics.build_analytics`, for the year by day, week and month and two
  filtered variants, in Europe/Berlin. This is the service the desk's page calls, timed without
  HTTP and templates (the page's own timing, over HTTP, comes with the web page). Every call
  runs every query; the "first" column is each variant's first call, with the memo of analysed
  comments emptied (a server's first view), the others find the comments analysed already;
- a full CSV export (`bot.response_export`) written to a sink that drops the text.

The page keeps closed days' counts (`storage.analytics_cache`). The "first" column is a
variant's first call (nothing kept: every day counted, then kept). Before every round a support
user corrects the label of one comment of an old day, chosen at random, so each timed call
recounts that day, as on a desk where labels are being corrected. The "full count" column is the
baseline in the same run: the page with nothing kept, every call (`--cold-rounds` calls, the kept
days deleted before each).

Calls are interleaved (each round runs every variant on every database in turn) and repeated;
prints p50 / p99 in ms per variant, rows/s of the export, and the target: p99 of the page under
500 ms on PostgreSQL (exit 1 when missed).
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO, cast

from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from bot.analytics import AnalyticsFilter, build_analytics
from bot.comment_terms import forget_terms, stop_words
from bot.response_export import open_export, write_export
from bot.trends import Period
from storage.bench_seed import seed_year
from storage.database import Database, open_database, transaction
from storage.desk_seed import scratch_postgres, vacuum_analyze
from storage.errors import StorageError
from storage.response_export import ResponseFilter
from storage.tables import AnalyticsDay, Answer, LabelCorrection

ZONE = "Europe/Berlin"


@dataclass(frozen=True, slots=True)
class Variant:
    """One page request: a name and its filter."""

    name: str
    filter: AnalyticsFilter


def _variants(today: date) -> list[Variant]:
    year = AnalyticsFilter(since=today - timedelta(days=364), until=today, zone=ZONE)
    return [
        Variant("year by day", replace(year, by=Period.DAY)),
        Variant("year by week", replace(year, by=Period.WEEK)),
        Variant("year by month", replace(year, by=Period.MONTH)),
        Variant(
            "week, delivery+telegram+pro, by touchpoint",
            replace(
                year,
                by=Period.WEEK,
                flow="delivery",
                channel="telegram",
                segment=("plan", "pro"),
                breakdown="touchpoint",
            ),
        ),
        Variant("month, by segment:plan", replace(year, by=Period.MONTH, breakdown="segment:plan")),
    ]


class _NullSink(io.TextIOBase):
    """Drops what is written; counts the characters."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@contextmanager
def _databases(args: argparse.Namespace) -> Iterator[list[tuple[str, str]]]:
    with (
        tempfile.TemporaryDirectory(prefix="cxbot-bench-dashboard-") as folder,
        ExitStack() as stack,
    ):
        found = [] if args.no_sqlite else [("SQLite", f"sqlite:///{Path(folder) / 'dashboard.db'}")]
        if not args.no_postgres:
            try:
                found.append(
                    ("PostgreSQL", stack.enter_context(scratch_postgres(args.postgres_url)))
                )
            except OperationalError as exc:  # an unreachable server: say so, bench SQLite alone
                print(f"PostgreSQL skipped: {str(exc).splitlines()[0]}", file=sys.stderr)
        yield found


def _seed(name: str, url: str, responses: int, now: datetime) -> Database:
    started = time.perf_counter()
    db = open_database(url)
    with transaction(db) as session:
        seeded = seed_year(session, responses=responses, now=now)
    if url.startswith("postgresql"):
        vacuum_analyze(url)
    print(
        f"{name}: seeded {seeded.responses} responses ({seeded.answers} answers, "
        f"{seeded.comments} comments, {seeded.invitations} invitations, "
        f"{seeded.review_items} review items) in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return db


def _time_page(
    db: Database, variant: Variant, now: datetime, *, first: bool = False, cold: bool = False
) -> float:
    if first:
        forget_terms()  # as on a server's first page view: every comment analysed
    if cold:
        with transaction(db) as session:
            session.execute(delete(AnalyticsDay))
    started = time.perf_counter()
    build_analytics(db, variant.filter, now=now)
    return (time.perf_counter() - started) * 1000


def _correct_an_old_label(db: Database, rng: random.Random, now: datetime) -> None:
    """A support user corrects one comment's label on a random day between 3 and 360 days ago
    (the triggers stamp that day: the next page recounts it)."""
    day_start = now - timedelta(days=rng.randint(3, 360))
    with transaction(db) as session:
        answer_id = session.scalars(
            select(col(Answer.id))
            .where(
                col(Answer.question_type) == "text",
                col(Answer.answered_at) >= day_start,
                col(Answer.answered_at) < day_start + timedelta(days=1),
            )
            .limit(1)
        ).first()
        if answer_id is not None:
            label = rng.choice(["negative", "neutral", "positive"])
            session.add(
                LabelCorrection(
                    answer_id=answer_id, old_label="unlabelled", new_label=label, actor="bench"
                )
            )


def _time_export(db: Database) -> tuple[float, int]:
    sink = _NullSink()
    started = time.perf_counter()
    rows = write_export(open_export(db, ResponseFilter()), "csv", cast(TextIO, sink))
    return time.perf_counter() - started, rows


def main(argv: list[str] | None = None) -> int:
    """Seed, time, print the table; exit 1 when the page's p99 on PostgreSQL misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 responses, fewer rounds")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per page variant")
    parser.add_argument("--exports", type=int, default=3, help="timed full exports per database")
    parser.add_argument(
        "--cold-rounds", type=int, default=3, help="timed calls with nothing kept (baseline)"
    )
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--no-sqlite", action="store_true", help="PostgreSQL only (the target's database)"
    )
    parser.add_argument("--target-ms", type=float, default=500.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.responses, args.rounds, args.exports = 10_000, min(args.rounds, 8), 1
        args.cold_rounds = min(args.cold_rounds, 2)
    if args.responses < 1 or args.rounds < 1 or args.exports < 0 or args.cold_rounds < 0:
        parser.error(
            "--responses and --rounds must be positive, --exports and --cold-rounds not negative"
        )
    now = datetime.now(UTC)
    variants = _variants(now.date())
    stop_words()  # load scikit-learn and the stop lists once, as a running server has
    gc.collect()
    gc.freeze()  # as `cxbot serve` does after start-up (bot.serve.run_serve)
    pages: dict[tuple[str, str], list[float]] = {}
    exports: dict[str, list[tuple[float, int]]] = {}
    names: list[str] = []
    firsts: dict[tuple[str, str], float] = {}
    colds: dict[tuple[str, str], list[float]] = {}
    rng = random.Random(16)
    try:
        with _databases(args) as urls, ExitStack() as open_dbs:
            names = [name for name, _ in urls]
            dbs: list[tuple[str, Database]] = []
            for name, url in urls:
                db = _seed(name, url, args.responses, now)
                open_dbs.callback(db.dispose)
                dbs.append((name, db))
            for name, db in dbs:  # first views: no comment analysed yet, cold caches
                for variant in variants:
                    firsts[(name, variant.name)] = _time_page(db, variant, now, first=True)
            print(f"timing {args.rounds} rounds of {len(variants)} pages", file=sys.stderr)
            for _ in range(args.rounds):
                for name, db in dbs:
                    _correct_an_old_label(db, rng, now)
                    for variant in variants:
                        sample = _time_page(db, variant, now)
                        pages.setdefault((name, variant.name), []).append(sample)
            print(f"timing {args.cold_rounds} rounds with nothing kept", file=sys.stderr)
            for _ in range(args.cold_rounds):
                for name, db in dbs:
                    for variant in variants:
                        sample = _time_page(db, variant, now, cold=True)
                        colds.setdefault((name, variant.name), []).append(sample)
            for i in range(args.exports):
                for name, db in dbs:
                    print(f"{name}: export {i + 1}/{args.exports}", file=sys.stderr)
                    exports.setdefault(name, []).append(_time_export(db))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _report(args, dbs_names=names, pages=pages, firsts=firsts, colds=colds, exports=exports)


def _report(
    args: argparse.Namespace,
    *,
    dbs_names: list[str],
    pages: dict[tuple[str, str], list[float]],
    firsts: dict[tuple[str, str], float],
    colds: dict[tuple[str, str], list[float]],
    exports: dict[str, list[tuple[float, int]]],
) -> int:
    print(
        f"\nAnalytics page data (bot.analytics.build_analytics: the service, no HTTP), "
        f"{args.responses} responses over 365 days, zone {ZONE}, {args.rounds} calls each"
    )
    worst: dict[str, float] = {}
    for name in dbs_names:
        print(f"\n{name}")
        print(
            f"  {'page':<44} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'first ms':>9} "
            f"{'full count p50':>15}"
        )
        for (db_name, variant), samples in pages.items():
            if db_name != name:
                continue
            p99 = _percentile(samples, 0.99)
            worst[name] = max(worst.get(name, 0.0), p99)
            cold = colds.get((name, variant))
            baseline = f"{statistics.median(cold):15.1f}" if cold else f"{'–':>15}"
            print(
                f"  {variant:<44} {_percentile(samples, 0.5):8.1f} {p99:8.1f} "
                f"{statistics.fmean(samples):8.1f} {firsts[(name, variant)]:9.1f} {baseline}"
            )
        runs = exports.get(name, [])
        if runs:
            seconds = [s for s, _ in runs]
            rows = runs[0][1]
            print(
                f"  full CSV export ({rows} rows, {len(runs)} runs): "
                f"p50 {_percentile(seconds, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(seconds, 0.99) * 1000:.0f} ms, "
                f"{rows / statistics.median(seconds):,.0f} rows/s"
            )
    target = worst.get("PostgreSQL")
    if target is None:
        print(f"\ntarget: p99 of the page < {args.target_ms:.0f} ms on PostgreSQL: not measured")
        return 0
    met = target < args.target_ms
    print(
        f"\ntarget: p99 of the page < {args.target_ms:.0f} ms on PostgreSQL: "
        f"{'met' if met else 'MISSED'} (worst variant's p99 {target:.1f} ms)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
