"""Benchmark the Telegram channel end to end, cxbot against a minimal PTB bot, fairly.

    python bench/telegram.py [--customers 300] [--concurrency 50] [--runs 2]
                             [--database-url postgresql://USER@HOST:PORT/DB] [--sqlite-only]
                             [--databases both|sqlite|postgresql] [--bots both|cxbot|baseline]

Simulated customers answer a whole survey each as Telegram users would: `/start`, a button for
NPS, a typed comment, buttons for CES and CSAT, a typed last answer — six updates, each pushed
to a fake Bot API's getUpdates queue (tests/fakes/telegram_api.py), each waited on until the
bot's reply arrives there. Two bots are measured, each polling the fake with python-telegram-bot:

- cxbot: what `cxbot serve` runs (`bot.serve.plan_channels`) — long polling that records each
  batch in the inbox before confirming it, the inbox worker (one transaction per group of due
  updates of different chats: claim, turns, outbox rows), the delivery worker sending the
  outbox in order per chat, one message at a time, each recorded before the next goes out — on
  SQLite (a temp file: the default configuration) and on PostgreSQL when one answers;
- baseline: a minimal ConversationHandler survey bot keeping answers in a dict, with PTB's
  defaults (its own HTTPXRequest, one update at a time) — the same questions, keyboards,
  callback answers and edits, and nothing else. A ConversationHandler moves to its next state
  only when a callback returns, so its updates must run one at a time; cxbot handles different
  chats concurrently and one chat's updates in order.

Fairness:

- The fake Bot API and the customers run in their own process (bench/_telegram_driver.py,
  started once per run): a fake server's threads and the customers' event loop in the bot's
  process would take the interpreter lock from the bot and bill their CPU to it. The two
  processes talk only through the fake's HTTP on 127.0.0.1 (port 0); the driver reports each
  run's figures as one JSON line.
- Runs are interleaved in rounds — cxbot on SQLite, the baseline, cxbot on PostgreSQL; `--runs`
  rounds (2 by default: A B A B, or A B C A B C with PostgreSQL) — each on fresh chat ids, cxbot
  each time on a fresh database (a new SQLite file; a new PostgreSQL database
  `cxbot_bench_<pid>_<run>`, created beside the one `--database-url` names — its role needs
  CREATEDB — and dropped after the run; the named database itself is untouched). Without
  `--database-url`, PostgreSQL runs when `postgresql://postgres@127.0.0.1:5432/test` (or
  `TEST_POSTGRES_URL`, as for the tests) answers; `--sqlite-only` (or `--databases sqlite`)
  skips it, `--databases postgresql` skips SQLite. Medians over the
  runs and the ratio within each round damp the drift of a shared machine. The last line says
  how many runs it took; the defaults take about 1.5 minutes on 2 cores.

Columns, one row per run, then the medians per bot:

- updates/s: updates answered ÷ seconds from the first update queued to the last reply
  recorded by the fake (the driver's clock);
- CPU ms/upd: CPU time of the bot's process only (`time.process_time` in this process: every
  thread of the bot, none of the driver's; a database server's own CPU is not included) over
  the same window, per update;
- API/upd: Bot API calls the bot made (getUpdates aside) per update, as the fake counted them;
- SQL/upd: statements cxbot's engine sent in the window per update, every worker included;
- SQL/turn: statements of the inbox worker's transactions that processed updates ÷ the updates
  they processed (claim and mark processed, turns, outbox rows; a group of updates shares
  BEGIN, the claim and COMMIT); see bench/_probes.py for what counts as a statement and
  how each is attributed (a thread-local label set by wrapping the workers' thread methods, in
  this process only). The medians also split SQL/upd into turn, inbox recording, delivery and
  idle claims;
- lag p50/p99: how late a task in the bot's event loop that wakes every 5 ms fires;
- p50/p99 ms: reply latency, update queued → the bot's reply (the next question or the thanks)
  recorded by the fake.

Then the ratios: cxbot's updates/s ÷ the baseline's of the same round, median over the rounds,
for SQLite and PostgreSQL, beside issue 16's targets (≥ 0.8 and ≥ 0.7). Progress goes to
standard error, the table to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Run as a script, this file's folder comes first on sys.path, and this file would shadow the
# `telegram` package it benchmarks; the checkout's root takes its place (for bot/ and bench/).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import psycopg  # noqa: E402
from sqlalchemy import make_url  # noqa: E402
from sqlalchemy.exc import ArgumentError  # noqa: E402
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bench._probes import LoopLag, SqlCounter, attribute_sql_to_workers  # noqa: E402
from bench._telegram_driver import SCRIPT  # noqa: E402
from bot.app import App, build_app  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.serve import plan_channels  # noqa: E402

DRIVER = _HERE / "_telegram_driver.py"
# Not a CXBOT_ name: cxbot reads every CXBOT_* variable as configuration (the tests' variable).
DEFAULT_POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGETS = {"SQLite": 0.8, "PostgreSQL": 0.7}  # issue 16: cxbot ÷ baseline updates/s
SETTLE_SECONDS = 0.2  # after a bot starts polling, before the customers start (not measured)


# -- the baseline: a minimal python-telegram-bot ConversationHandler survey ------------------------

NPS, LIKED, CES, CSAT, LAST = range(5)


def _scale(question: str, lo: int, hi: int, rows: int = 1) -> dict[str, Any]:
    buttons = [
        InlineKeyboardButton(str(v), callback_data=f"a:{question}:{v}") for v in range(lo, hi + 1)
    ]
    size = -(-len(buttons) // rows)
    markup = InlineKeyboardMarkup([buttons[i : i + size] for i in range(0, len(buttons), size)])
    return {"reply_markup": markup}


def baseline_handler() -> ConversationHandler[Any]:
    """NPS → what did you like → CES → CSAT → anything else → thanks, answers in a dict."""
    answers: dict[int, dict[str, str]] = defaultdict(dict)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.effective_chat is not None
        chat = update.effective_chat.id
        await context.bot.send_message(chat, "Hi! We'd love your feedback.")
        await context.bot.send_message(
            chat, "How likely are you to recommend us?", **_scale("nps", 0, 10, 2)
        )
        return NPS

    def on_button(question: str, then: Callable[[int, Any], Awaitable[None]], state: int) -> Any:
        async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            query = update.callback_query
            assert query is not None and query.data is not None and query.message is not None
            await query.answer()
            value = query.data.rsplit(":", 1)[1]
            answers[query.message.chat.id][question] = value
            await context.bot.edit_message_text(
                f"{getattr(query.message, 'text', '')}\n\n✓ {value}",
                chat_id=query.message.chat.id,
                message_id=query.message.message_id,
            )
            await then(query.message.chat.id, context.bot)
            return state

        return callback

    def on_text(question: str, then: Callable[[int, Any], Awaitable[None]], state: int) -> Any:
        async def callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            assert update.message is not None and update.message.text is not None
            answers[update.message.chat.id][question] = update.message.text
            await then(update.message.chat.id, context.bot)
            return state

        return callback

    async def ask_liked(chat: int, bot: Any) -> None:
        await bot.send_message(chat, "Great to hear! What did you like most?")

    async def ask_ces(chat: int, bot: Any) -> None:
        await bot.send_message(chat, "How easy was it?", **_scale("ces", 1, 7))

    async def ask_csat(chat: int, bot: Any) -> None:
        await bot.send_message(chat, "How satisfied are you?", **_scale("csat", 1, 5))

    async def ask_last(chat: int, bot: Any) -> None:
        await bot.send_message(chat, "Anything else you'd like to tell us?")

    async def thank(chat: int, bot: Any) -> None:
        await bot.send_message(chat, "Thank you for your feedback!")

    text = filters.TEXT & ~filters.COMMAND
    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            NPS: [CallbackQueryHandler(on_button("nps", ask_liked, LIKED), pattern=r"^a:nps:")],
            LIKED: [MessageHandler(text, on_text("liked", ask_ces, CES))],
            CES: [CallbackQueryHandler(on_button("ces", ask_csat, CSAT), pattern=r"^a:ces:")],
            CSAT: [CallbackQueryHandler(on_button("csat", ask_last, LAST), pattern=r"^a:csat:")],
            LAST: [MessageHandler(text, on_text("last", thank, ConversationHandler.END))],
        },
        fallbacks=[],
    )


# -- the bots under test ---------------------------------------------------------------------------


class BotUnderTest(Protocol):
    """A bot the bench starts against the fake, measures, and stops."""

    sql: SqlCounter | None
    tasks: list[asyncio.Task[None]]  # must not end while the bot runs

    async def start(self, base_url: str, token: str) -> None:
        """Start polling the fake at `base_url`."""

    async def stop(self) -> None:
        """Stop and release everything."""


class Cxbot:
    """cxbot as `cxbot serve` runs it: polling into the inbox, inbox and delivery workers."""

    def __init__(self, *, data_dir: str, database_url: str | None) -> None:
        self._data_dir = data_dir
        self._database_url = database_url
        self.sql: SqlCounter | None = None
        self._app: App | None = None
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, base_url: str, token: str) -> None:
        """Build the app (migrating its fresh database), start the services and tasks."""
        environ = {
            "CXBOT_GENERAL__DATA_DIR": self._data_dir,
            "CXBOT_TELEGRAM__TOKEN": token,
            "CXBOT_TELEGRAM__BASE_URL": base_url,
            "CXBOT_SENTIMENT__ENABLED": "false",
        }
        if self._database_url:
            environ["CXBOT_DATABASE__URL"] = self._database_url
        self._app = build_app(load_settings(None, environ=environ))
        self.sql = SqlCounter(self._app.db)
        plan = plan_channels(self._app)
        for service in plan.services:
            await service.start()
            self._stops.append(service.stop)
        self.tasks = [
            asyncio.create_task(_awaited(task.run), name=task.name) for task in plan.tasks
        ]

    async def stop(self) -> None:
        """Cancel the tasks, stop the services (last started first), close the database."""
        for task in self.tasks:
            task.cancel()
        # A task that failed during the run was reported then (`_unless_a_task_ends`).
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for stop in reversed(self._stops):
            await stop()
        if self.sql is not None:
            self.sql.stop()
        if self._app is not None:
            self._app.close()


async def _awaited(run: Callable[[], Awaitable[None]]) -> None:
    await run()  # a serve task is any awaitable; create_task wants a coroutine


class Baseline:
    """The PTB ConversationHandler survey bot with PTB's defaults."""

    sql: SqlCounter | None = None

    def __init__(self) -> None:
        self._application: Any = None
        self.tasks: list[asyncio.Task[None]] = []  # PTB runs its own

    async def start(self, base_url: str, token: str) -> None:
        """Build the Application (PTB's own HTTPXRequest) and start polling."""
        application = ApplicationBuilder().token(token).base_url(base_url).build()
        application.add_handler(baseline_handler())
        await application.initialize()
        assert application.updater is not None
        await application.updater.start_polling(timeout=10)
        await application.start()
        self._application = application

    async def stop(self) -> None:
        """Stop polling and shut the Application down."""
        application = self._application
        if application is None:
            return
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


# -- the other process -----------------------------------------------------------------------------


class Driver:
    """bench/_telegram_driver.py in its own process: the fake Bot API and the customers."""

    def __init__(self, process: asyncio.subprocess.Process, base_url: str, token: str) -> None:
        self._process = process
        self._running = False  # between `go` and the results: the driver is not listening
        self.base_url = base_url
        self.token = token

    @classmethod
    async def start(cls, *, customers: int, concurrency: int, first_chat: int) -> Driver:
        """Start the process; return once its fake listens."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(DRIVER),
            f"--customers={customers}",
            f"--concurrency={concurrency}",
            f"--first-chat={first_chat}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,  # the results' line holds every latency
        )
        hello = await cls._read(process)
        return cls(process, hello["base_url"], hello["token"])

    async def run_customers(self) -> dict[str, Any]:
        """Tell the driver to go; its figures once every customer finished."""
        await self._send("go")
        self._running = True
        result = await self._read(self._process)
        self._running = False
        if "error" in result:
            raise RuntimeError(f"the bot did not answer in time: {result['error']}")
        return result

    async def close(self) -> None:
        """Tell the driver to stop its fake and wait for it to exit."""
        if self._process.returncode is None and self._running:
            self._process.kill()  # the run failed half-way: nothing more to learn from it
            await self._process.wait()
        elif self._process.returncode is None:
            try:
                await self._send("stop")
                await asyncio.wait_for(self._process.wait(), 10)
            except (TimeoutError, ConnectionError):
                self._process.kill()
                await self._process.wait()

    async def _send(self, word: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(word.encode() + b"\n")
        await self._process.stdin.drain()

    @staticmethod
    async def _read(process: asyncio.subprocess.Process) -> dict[str, Any]:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line:
            await process.wait()
            raise RuntimeError(f"the bench driver exited ({process.returncode}) unexpectedly")
        message: dict[str, Any] = json.loads(line)
        return message


# -- PostgreSQL: a throwaway database per run ------------------------------------------------------


class Postgres:
    """A PostgreSQL server on which the bench creates (and drops) one database per cxbot run."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise SystemExit(f"--database-url: not a database URL: {url!r}") from None
        if parsed.get_backend_name() != "postgresql":
            raise SystemExit(
                "--database-url takes a PostgreSQL URL (cxbot on SQLite always runs, on a "
                "temp file)"
            )
        self._url = parsed
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self.shown = parsed.set(drivername="postgresql").render_as_string(hide_password=True)

    def unreachable(self) -> str | None:
        """Why the server cannot be used (None: it answers)."""
        try:
            with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None

    @contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A fresh, empty database for one run (cxbot's URL to it), dropped afterwards."""
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self._url.set(drivername="postgresql+psycopg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- one run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One bot's run: what the driver saw and what this process measured."""

    number: int
    round: int
    bot: str  # "cxbot" or "baseline"
    database: str | None  # "SQLite", "PostgreSQL"; None for the baseline
    updates: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    api_calls: int = 0
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    sql_by_part: dict[str, int] | None = None
    turns: int = 0
    groups: int = 0
    turn_statements: int = 0
    idle_claim_statements: int = 0

    @property
    def label(self) -> str:
        """What the row is called."""
        if self.bot == "baseline":
            return "baseline PTB (dict)"
        return f"cxbot {self.database}"

    @property
    def rate(self) -> float:
        """Updates per second."""
        return self.updates / self.seconds

    def columns(self) -> dict[str, float | None]:
        """The table's figures for this run (None: does not apply)."""
        sql = self.sql_by_part
        ms = [x * 1000 for x in self.latencies]
        lag = [x * 1000 for x in self.lags] or [0.0]
        return {
            "updates/s": self.rate,
            "CPU ms/upd": self.cpu_seconds * 1000 / self.updates,
            "API/upd": self.api_calls / self.updates,
            "SQL/upd": None if sql is None else sum(sql.values()) / self.updates,
            "SQL/turn": None if sql is None else self.turn_statements / max(1, self.turns),
            "lag p50": _percentile(lag, 0.50),
            "lag p99": _percentile(lag, 0.99),
            "p50 ms": _percentile(ms, 0.50),
            "p99 ms": _percentile(ms, 0.99),
        }


async def _unless_a_task_ends(
    work: Awaitable[dict[str, Any]], tasks: list[asyncio.Task[None]]
) -> dict[str, Any]:
    """`work`'s result; an error as soon as one of the bot's tasks ends (as serve would stop)."""
    working = asyncio.ensure_future(work)
    await asyncio.wait([working, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if working.done():
        return working.result()
    working.cancel()
    ended = next(t for t in tasks if t.done())
    raise RuntimeError(f"cxbot's {ended.get_name()} task ended during the run: {ended!r}")


async def run_one(run: Run, bot: BotUnderTest, args: argparse.Namespace) -> Run:
    """Start a driver and the bot, run every customer, and measure the bot over that window."""
    driver = await Driver.start(
        customers=args.customers,
        concurrency=args.concurrency,
        first_chat=10_000_000 * run.number,  # fresh chat ids in every run
    )
    try:
        try:
            await bot.start(driver.base_url, driver.token)
            await asyncio.sleep(SETTLE_SECONDS)
            lag = LoopLag()
            if bot.sql is not None:
                bot.sql.start()
            lag.start()
            cpu = time.process_time()
            result = await _unless_a_task_ends(driver.run_customers(), bot.tasks)
            run.cpu_seconds = time.process_time() - cpu
            run.lags = await lag.stop()
            if bot.sql is not None:
                run.sql_by_part = dict(bot.sql.by_part)
                run.turns = bot.sql.turns
                run.groups = bot.sql.groups
                run.turn_statements = bot.sql.turn_statements
                run.idle_claim_statements = bot.sql.idle_claim_statements
        finally:
            await bot.stop()
    finally:
        await driver.close()
    run.updates = int(result["updates"])
    run.seconds = float(result["seconds"])
    run.latencies = [float(x) for x in result["latencies"]]
    run.api_calls = sum(int(n) for n in result["api_calls"].values())
    return run


def schedule(args: argparse.Namespace, databases: list[str]) -> list[Run]:
    """The runs in order: per round cxbot on SQLite, the baseline, cxbot on PostgreSQL."""
    runs: list[Run] = []
    for round_ in range(1, args.runs + 1):
        kinds: list[tuple[str, str | None]] = []
        if args.bots in ("both", "cxbot"):
            kinds.append(("cxbot", databases[0]))
        if args.bots in ("both", "baseline"):
            kinds.append(("baseline", None))
        if args.bots in ("both", "cxbot"):
            kinds.extend(("cxbot", db) for db in databases[1:])
        for bot, database in kinds:
            runs.append(Run(number=len(runs) + 1, round=round_, bot=bot, database=database))
    return runs


async def run_all(args: argparse.Namespace, postgres: Postgres | None) -> list[Run]:
    """Every scheduled run, one after the other; progress on standard error."""
    attribute_sql_to_workers()
    databases = ["SQLite"] if args.databases != "postgresql" else []
    databases += ["PostgreSQL"] if postgres is not None else []
    runs = schedule(args, databases)
    for run in runs:
        with tempfile.TemporaryDirectory(prefix="cxbot-bench-") as data_dir:
            if run.bot == "baseline":
                await run_one(run, Baseline(), args)
            elif run.database == "PostgreSQL":
                assert postgres is not None
                with postgres.database(f"cxbot_bench_{os.getpid()}_{run.number}") as url:
                    await run_one(run, Cxbot(data_dir=data_dir, database_url=url), args)
            else:
                await run_one(run, Cxbot(data_dir=data_dir, database_url=None), args)
        print(
            f"run {run.number}/{len(runs)}: {run.label}: {run.rate:.1f} updates/s",
            file=sys.stderr,
            flush=True,
        )
    return runs


# -- the report ------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_HEADS = {
    "updates/s": "{:>10.1f}",
    "CPU ms/upd": "{:>11.1f}",
    "API/upd": "{:>8.2f}",
    "SQL/upd": "{:>8.1f}",
    "SQL/turn": "{:>9.1f}",
    "lag p50": "{:>8.1f}",
    "lag p99": "{:>8.1f}",
    "p50 ms": "{:>8.1f}",
    "p99 ms": "{:>8.1f}",
}


def _row(first: str, label: str, updates: str, figures: dict[str, float | None]) -> str:
    cells = []
    for head, fmt in _HEADS.items():
        value = figures[head]
        width = int(fmt[3:].split(".")[0])
        cells.append("–".rjust(width) if value is None else fmt.format(value))
    return f"{first:<7}{label:<22}{updates:>8}" + "".join(cells)


def _median_figures(runs: list[Run]) -> dict[str, float | None]:
    per_run = [r.columns() for r in runs]
    figures: dict[str, float | None] = {}
    for head in _HEADS:
        values = [c[head] for c in per_run if c[head] is not None]
        figures[head] = statistics.median(values) if values else None  # type: ignore[type-var]
    return figures


def report(runs: list[Run], args: argparse.Namespace, notes: list[str], seconds: float) -> str:
    """The table: one row per run, the medians per bot, the SQL split, and the ratios."""
    rounds = max((r.round for r in runs), default=0)
    lines = [
        f"Telegram bench: {args.customers} customers × {len(SCRIPT)} updates, "
        f"{args.concurrency} at a time, long polling a loopback fake Bot API",
        f"(the fake and the customers in a process of their own; {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]})",
        *notes,
        "",
        f"{'run':<7}{'bot':<22}{'updates':>8}"
        + "".join(h.rjust(int(f[3:].split(".")[0])) for h, f in _HEADS.items()),
    ]
    for r in runs:
        lines.append(_row(f"{r.round}.{r.number}", r.label, str(r.updates), r.columns()))
    labels = list(dict.fromkeys(r.label for r in runs))
    lines.append("")
    for label in labels:
        mine = [r for r in runs if r.label == label]
        lines.append(_row("median", label, f"×{len(mine)}", _median_figures(mine)))
    for label in labels:
        mine = [r for r in runs if r.label == label and r.sql_by_part is not None]
        if not mine:
            continue

        def per_update(part: str, runs_: list[Run] = mine) -> float:
            return statistics.median((r.sql_by_part or {}).get(part, 0) / r.updates for r in runs_)

        idle = statistics.median(r.idle_claim_statements / r.updates for r in mine)
        group = statistics.median(r.turns / max(1, r.groups) for r in mine)
        lines.append(
            f"SQL/upd of {label} (medians): turns {per_update('turn') - idle:.1f} (the inbox "
            f"worker's transactions held {group:.1f} updates each), idle claims {idle:.1f}, "
            f"inbox recording {per_update('record'):.1f}, delivery {per_update('delivery'):.1f}, "
            f"other {per_update('other'):.1f}"
        )
    baselines = {r.round: r for r in runs if r.bot == "baseline"}
    for database, target in TARGETS.items():
        pairs = [
            r.rate / baselines[r.round].rate
            for r in runs
            if r.bot == "cxbot" and r.database == database and r.round in baselines
        ]
        if not pairs:
            continue
        ratio = statistics.median(pairs)
        verdict = "met" if ratio >= target else "not met"
        lines.append(
            f"cxbot / baseline updates/s on {database + ':':<12}{ratio:.2f}  "
            f"(rounds: {', '.join(f'{p:.2f}' for p in pairs)}; target ≥ {target}: {verdict})"
        )
    lines.append(
        f"{len(runs)} runs ({rounds} round{'s' if rounds != 1 else ''} of "
        f"{', '.join(dict.fromkeys(r.label for r in runs))}) in {seconds:.0f} s"
    )
    return "\n".join(lines)


def _postgres(args: argparse.Namespace, notes: list[str]) -> Postgres | None:
    """The PostgreSQL server to run cxbot on, if any (a note says why not)."""
    if args.sqlite_only or args.databases == "sqlite" or args.bots == "baseline":
        return None
    postgres = Postgres(args.database_url or DEFAULT_POSTGRES)
    why = postgres.unreachable()
    if why is None:
        notes.append(f"PostgreSQL: {postgres.shown} (a fresh database per run)")
        return postgres
    if args.database_url:
        raise SystemExit(f"--database-url: PostgreSQL at {postgres.shown} does not answer: {why}")
    if args.databases == "postgresql":
        raise SystemExit(f"--databases postgresql: {postgres.shown} does not answer: {why}")
    notes.append(f"PostgreSQL: skipped, {postgres.shown} does not answer ({why})")
    return None


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=300, help="surveys per run (300)")
    parser.add_argument("--concurrency", type=int, default=50, help="customers at a time (50)")
    parser.add_argument("--runs", type=int, default=2, help="rounds of runs (2: A B A B)")
    parser.add_argument(
        "--database-url",
        default="",
        help=f"PostgreSQL server for cxbot's runs (default {DEFAULT_POSTGRES}, when it answers)",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="no PostgreSQL runs")
    parser.add_argument(
        "--databases",
        choices=["both", "sqlite", "postgresql"],
        default="both",
        help="cxbot's databases (both; --sqlite-only is --databases sqlite)",
    )
    parser.add_argument("--bots", choices=["both", "cxbot", "baseline"], default="both")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.concurrency < 1 or args.runs < 1:
        parser.error("--customers, --concurrency and --runs must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")  # PTB's per_message advice for the baseline's handler
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    notes: list[str] = []
    postgres = _postgres(args, notes)
    started = time.perf_counter()
    runs = asyncio.run(run_all(args, postgres))
    print(report(runs, args, notes, time.perf_counter() - started))


if __name__ == "__main__":
    main()
