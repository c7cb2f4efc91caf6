"""Scale-out: invitations/s and turns/s for 1, 2 and 4 `cxbot serve` processes on PostgreSQL and
1 on SQLite, in one run.

    python bench/scale.py [--invitations 600] [--customers 100] [--concurrency 40]
                          [--processes 1,2,4] [--latency 0.05] [--max-in-flight 8]
                          [--batch 100] [--callers 4] [--database-url URL]
                          [--no-sqlite] [--no-postgres] [--profile DIR]

Each configuration runs on a fresh database (a temp SQLite file; a PostgreSQL database
`cxbot_scale_<pid>_<n>` created beside the one `--database-url` names — default
`postgresql://postgres@127.0.0.1:5432/test` or `TEST_POSTGRES_URL` — and dropped after) with N
`cxbot serve` processes started together (each a subprocess: Telegram in webhook mode, HTTP on
port 0, sentiment off, `[delivery] max_in_flight` as given — a comma-separated list measures
each value in turn, e.g. `--max-in-flight 1,8`). This process holds the fake Bot API
(tests/fakes/telegram_api.py, answering every call after `--latency` seconds, a thread per
connection) and the load driver, so neither takes CPU from a cxbot process's interpreter; with
2 cores they do share the machine with them and with PostgreSQL, and the table says how the
CPU was split.

1. **Invitations.** Customers who wrote to the bot before (customer rows, chats known to the
   fake) are invited through `POST /api/v1/invitations/batch` (an invite key made with `cxbot
   apikeys create`): `--invitations` rows, no `send_after` (each survey opens in the API's
   transaction, its intro and first question go to the outbox), in batches of `--batch` posted
   by `--callers` concurrent callers, batch i to process i mod N (a load balancer).
   invitations/s = invitations ÷ seconds from the first POST to the fake recording the last
   customer's first message; p50/p99: from a row's batch POST to its customer's first message.
   API/s: rows stored per second (the POSTs alone).
2. **Turns.** `--customers` invited customers answer the whole survey, `--concurrency` at a
   time, as Telegram delivers a webhook: each update POSTed (with the secret token header) to
   process i mod N, round-robin — Telegram allows one getUpdates consumer, so several processes
   take webhooks — the next one after the bot's reply reached the fake: NPS button, a comment,
   CES and CSAT buttons, "skip" (5 updates each). turns/s = updates ÷ seconds from the first
   POST to the last reply; p50/p99 ms: update POSTed → reply recorded.

Columns, per phase: `CPU%` how busy all cores were, split into the serve processes, this
process (fake + driver), PostgreSQL and the rest (other work on the machine: on a shared
machine, read the figures beside it); `ms/inv`, `ms/turn` the serve processes' CPU per
invitation or turn. Then the scaling ratios (N processes ÷ 1, on PostgreSQL, per max_in_flight)
beside issue 11's target: 4 processes ≥ 2.5× the invitations/s of one.

`--profile DIR` runs the largest PostgreSQL configuration once more with `py-spy record`
(`--gil`: samples of the thread holding the interpreter lock, i.e. Python's CPU; 50 Hz,
non-blocking; raw stacks in DIR) attached to every serve process, and prints where the samples
were in each phase: what for (the cxbot activity under the sample), in what (the code on top of
the stack), and the top activity by callee. That run is marked "(profiled)" and left out of the
ratios: py-spy's own CPU shows as "other". Progress goes to standard error, the table to
standard output. The defaults take about 1.5 minutes on 2 cores (2.5 with --profile).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/telegram.py would
# shadow the `telegram` package; the checkout's root takes its place (for bot/, bench/, tests/).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx  # noqa: E402

from bench._cpu import CpuSplit, CpuWindow, Profiler, breakdown, summarize  # noqa: E402
from bench._telegram_driver import EXPECTED_MESSAGES, SCRIPT, Replies  # noqa: E402
from bench.telegram import DEFAULT_POSTGRES, Postgres  # noqa: E402
from tests.fakes.kill_harness import serve_env  # noqa: E402
from tests.fakes.serve_fleet import (  # noqa: E402
    Fleet,
    batches_of,
    create_api_key,
    invitation_rows,
    post_batch,
    seed_customers,
)
from tests.fakes.telegram_api import ApiCall, FakeTelegramAPI  # noqa: E402
from web.server import TELEGRAM_SECRET_HEADER  # noqa: E402

TARGET = 2.5  # issue 11: 4 processes ÷ 1, invitations/s on PostgreSQL
SECRET = "scale_Bench-secret"
# Every Bot API method cxbot calls here; each answers after --latency.
METHODS = (
    "getMe",
    "setWebhook",
    "deleteWebhook",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
)
TURN_SCRIPT = SCRIPT[1:]  # the invitation did SCRIPT[0]'s work (intro + first question)
TURN_REPLIES = EXPECTED_MESSAGES[1:]
FLOW = "post_interaction"  # the flow SCRIPT answers
# What a profile sample was spent for: the first of these frames from the top of the stack down.
ACTIVITIES = (
    ("Invitations.create_sync", "invitations API (check, store, open the survey)"),
    ("InboxWorker._process_batch", "inbox worker (turns)"),
    ("Inbox._record", "recording webhooks"),
    ("DeliveryWorker._claim", "delivery: claims"),
    ("DeliveryWorker._record", "delivery: results"),
    ("DeliveryWorker._attempt", "delivery: sending"),
    ("InvitationScheduler", "invitation scheduler"),
    ("ReminderWorker", "reminder worker"),
    ("DeliveryWorker.release_dead_claims", "delivery: dead claims"),
    ("uvicorn", "HTTP server"),
    ("starlette", "HTTP server"),
)


def say(text: str) -> None:
    """Progress, on standard error."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class Config:
    """One configuration to measure."""

    number: int
    database: str  # "PostgreSQL" / "SQLite"
    processes: int
    in_flight: int  # [delivery] max_in_flight
    profiled: bool = False

    @property
    def label(self) -> str:
        """E.g. "PostgreSQL × 4, 8 in flight"."""
        mark = " (profiled)" if self.profiled else ""
        return f"{self.database} × {self.processes}, {self.in_flight} in flight{mark}"


@dataclass
class Result:
    """What one configuration did."""

    config: Config
    invitations: int = 0
    invite_seconds: float = 0.0
    api_seconds: float = 0.0
    first_message: list[float] = field(default_factory=list)  # per invitation, seconds
    turns: int = 0
    turn_seconds: float = 0.0
    turn_latency: list[float] = field(default_factory=list)
    cpu: dict[str, CpuSplit] = field(default_factory=dict)  # per phase
    profile: dict[str, list[Path]] = field(default_factory=dict)  # per phase, with --profile

    @property
    def invitations_per_second(self) -> float:
        return self.invitations / self.invite_seconds if self.invite_seconds else 0.0

    @property
    def turns_per_second(self) -> float:
        return self.turns / self.turn_seconds if self.turn_seconds else 0.0


class FirstMessages:
    """When the fake recorded each chat's first message and how many each got (fake threads)."""

    def __init__(self, chats: Sequence[int]) -> None:
        self._waiting = set(chats)
        self._lock = threading.Lock()
        self.at: dict[int, float] = {}
        self.counts: dict[int, int] = dict.fromkeys(chats, 0)
        self.all_first = threading.Event()

    def __call__(self, call: ApiCall) -> None:
        if call.method != "sendMessage" or call.status != 200:
            return
        chat = int(call.body["chat_id"])
        with self._lock:
            if chat not in self.counts:
                return
            self.counts[chat] += 1
            if chat in self._waiting:
                self._waiting.discard(chat)
                self.at[chat] = call.at
                if not self._waiting:
                    self.all_first.set()

    def with_at_least(self, n: int) -> int:
        """Chats that got at least `n` messages."""
        with self._lock:
            return sum(1 for c in self.counts.values() if c >= n)


def invite(
    fake: FakeTelegramAPI,
    fleet: Fleet,
    key: str,
    chats: Sequence[int],
    args: argparse.Namespace,
    result: Result,
) -> None:
    """Phase 1: the invitations, posted in batches; waits for every first message."""
    first = FirstMessages(chats)
    fake.listeners.append(first)
    rows = invitation_rows(chats, send_after=None, touchpoint="support_contact", flow_id=FLOW)
    batches = batches_of(rows, args.batch)
    urls = fleet.urls
    posted_at: dict[int, float] = {}
    numbers = itertools.count()
    lock = threading.Lock()

    def caller() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    number = next(numbers)
                if number >= len(batches):
                    return
                started = time.perf_counter()
                answered = post_batch(http, urls[number % len(urls)], key, batches[number])
                if any(r["status"] != "sent" for r in answered):
                    raise RuntimeError(f"not sent at once: {answered[:3]}")
                for row in batches[number]:
                    posted_at[int(row["user_id"])] = started

    started = time.perf_counter()
    with ThreadPoolExecutor(args.callers) as pool:
        for done in [pool.submit(caller) for _ in range(args.callers)]:
            done.result()
    result.api_seconds = time.perf_counter() - started
    if not first.all_first.wait(timeout=600):
        raise RuntimeError("not every invited customer got a message within 10 minutes")
    result.invitations = len(chats)
    result.invite_seconds = max(first.at.values()) - started
    result.first_message = [first.at[c] - posted_at[c] for c in chats]
    # The survey's first question follows the intro: wait for both before anyone answers.
    deadline = time.monotonic() + 300
    while first.with_at_least(2) < len(chats):
        if time.monotonic() > deadline:
            raise RuntimeError("first questions did not all arrive within 5 minutes")
        time.sleep(0.02)
    fake.listeners.remove(first)


async def answer(
    fake: FakeTelegramAPI, fleet: Fleet, chats: Sequence[int], concurrency: int, result: Result
) -> None:
    """Phase 2: customers answer the survey through webhooks posted round-robin."""
    replies = Replies(fake, asyncio.get_running_loop())
    urls = fleet.urls
    turn = itertools.count()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for chat in chats:
        queue.put_nowait(chat)
    latencies: list[float] = []

    async def customer(http: httpx.AsyncClient, chat: int) -> None:
        received = 0
        for (kind, value), expected in zip(TURN_SCRIPT, TURN_REPLIES, strict=True):
            if kind == "text":
                update = fake.stamp(fake.message(chat, value))
            else:
                update = fake.stamp(fake.press_update(chat, fake.last_message_id(chat), value))
            url = urls[next(turn) % len(urls)]
            posted = time.perf_counter()
            answer = await http.post(
                f"{url}/telegram/webhook", json=update, headers={TELEGRAM_SECRET_HEADER: SECRET}
            )
            if answer.status_code != 200:
                raise RuntimeError(f"webhook: HTTP {answer.status_code}: {answer.text[:300]}")
            received += expected
            latencies.append(await replies.until(chat, received) - posted)

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            await customer(http, queue.get_nowait())

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(min(concurrency, len(chats)))))
    result.turn_seconds = time.perf_counter() - started
    result.turns = len(latencies)
    result.turn_latency = latencies


def run_config(
    config: Config, database_url: str, args: argparse.Namespace, work: Path, first_chat: int
) -> Result:
    """Start the processes, run both phases, stop them; the figures."""
    result = Result(config)
    chats = [first_chat + i for i in range(args.invitations)]
    with FakeTelegramAPI() as fake:
        for method in METHODS:
            fake.latency[method] = (args.latency, args.latency)
        env = serve_env(
            work / "data",
            database_url,
            telegram__token=fake.token,
            telegram__base_url=fake.base_url,
            telegram__mode="webhook",
            telegram__webhook_url="https://cx.example.com/telegram/webhook",
            telegram__secret_token=SECRET,
            delivery__max_in_flight=str(config.in_flight),
            general__log_level="WARNING",
        )
        key = create_api_key(env, work, name="bench")
        seed_customers(database_url, chats)
        fake.known_chats.update(chats)
        fleet = Fleet(env, work, config.processes)
        folder = args.profile if config.profiled else None
        try:
            fleet.start()
            time.sleep(0.5)  # every process's workers are running
            with measured(result, "invitations", fleet.pids, folder):
                invite(fake, fleet, key, chats, args, result)
            with measured(result, "turns", fleet.pids, folder):
                customers = chats[: args.customers]
                asyncio.run(answer(fake, fleet, customers, args.concurrency, result))
        except Exception as exc:
            raise RuntimeError(f"{config.label}: {exc}\n{fleet.logs(1500)}") from exc
        finally:
            fleet.stop()
    return result


@contextmanager
def measured(
    result: Result, phase: str, pids: Sequence[int], folder: Path | None
) -> Iterator[None]:
    """The CPU split of a phase into `result.cpu[phase]`; with a folder, py-spy profiles of
    the serve processes into it (`result.profile[phase]`)."""
    window = CpuWindow(pids)
    name = f"serve{result.config.processes}-{result.config.in_flight}-{phase}"
    profiler = Profiler(folder, name, pids) if folder else None
    if profiler is not None:
        profiler.start()
    window.start()
    try:
        yield
        result.cpu[phase] = window.stop()
    finally:
        if profiler is not None:
            result.profile[phase] = profiler.stop()


@contextmanager
def sqlite_database(work: Path) -> Iterator[str]:
    """A fresh SQLite file for one configuration."""
    yield f"sqlite:///{work / 'scale.db'}"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}"


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def head(width: int) -> str:
    """The table's two header lines, the configuration column `width` wide."""
    return (
        f"{'':<{width}}{'-- invitations ':-<60}  {'-- turns ':-<56}\n"
        f"{'configuration':<{width}}{'inv/s':>7}{'p50 s':>7}{'p99 s':>7}{'API/s':>7}"
        f"  {'CPU% = serve+drv+pg+other':<25}{'ms/inv':>7}"
        f"  {'turns/s':>7}{'p50 ms':>7}{'p99 ms':>7}  {'CPU% = serve+drv+pg+other':<25}"
        f"{'ms/turn':>8}"
    )


def _cpu_cells(cpu: CpuSplit | None, count: int) -> str:
    """The CPU split of a phase and the serve processes' CPU ms per unit of work."""
    if cpu is None or cpu.busy is None:
        return f"{'–':<25}{'–':>7}"
    split = "+".join(
        _pct(cpu.share(part)) for part in (cpu.serve, cpu.driver, cpu.postgres, cpu.other)
    )
    per = (cpu.serve or 0) * 1000 / max(count, 1)
    return f"{_pct(cpu.busy_share) + ' = ' + split:<25}{per:>7.1f}"


def row(r: Result, width: int = 0) -> str:
    """One configuration's line of the table (the label `width` wide)."""
    return (
        f"{r.config.label:<{width}}{r.invitations_per_second:>7.1f}"
        f"{statistics.median(r.first_message):>7.2f}{_quantile(r.first_message, 0.99):>7.2f}"
        f"{r.invitations / r.api_seconds if r.api_seconds else 0:>7.0f}"
        f"  {_cpu_cells(r.cpu.get('invitations'), r.invitations)}"
        f"  {r.turns_per_second:>7.1f}{statistics.median(r.turn_latency) * 1000:>7.0f}"
        f"{_quantile(r.turn_latency, 0.99) * 1000:>7.0f}"
        f"  {_cpu_cells(r.cpu.get('turns'), r.turns)} "
    ).rstrip()


def _shares(shares: list[tuple[str, float]]) -> str:
    return ", ".join(f"{name} {share * 100:.0f}%" for name, share in shares)


def profile_lines(r: Result, folder: Path | None) -> list[str]:
    """Where the profiled configuration's serve processes spent their CPU, per phase."""
    lines = []
    for phase, files in r.profile.items():
        samples, on_top = summarize(files)
        if not samples:
            lines.append(f"profile of {r.config.label}, {phase}: no samples (is py-spy allowed?)")
            continue
        _, under = summarize(files, by=ACTIVITIES)
        lines += [
            f"profile of {r.config.label}, {phase} phase: {samples} samples of the thread holding "
            f"the interpreter lock in {len(files)} processes (py-spy --gil, files in {folder}):",
            f"  for: {_shares(under)}",
            f"  in: {_shares(on_top)}",
        ]
        top = next((needle for needle, name in ACTIVITIES if name == under[0][0]), None)
        if top is not None:
            lines.append(f"  {under[0][0]}, by callee: {_shares(breakdown(files, top))}")
    return lines


def ratio_lines(results: list[Result]) -> list[str]:
    """N PostgreSQL processes ÷ 1, for each max_in_flight; the target beside 4 ÷ 1."""
    lines = []
    for in_flight in dict.fromkeys(r.config.in_flight for r in results):
        fleet = {
            r.config.processes: r
            for r in results
            if r.config.database == "PostgreSQL"
            and r.config.in_flight == in_flight
            and not r.config.profiled
        }
        one = fleet.get(1)
        for n, r in sorted(fleet.items()):
            if one is None or n == 1:
                continue
            invitations = r.invitations_per_second / one.invitations_per_second
            turns = r.turns_per_second / one.turns_per_second
            verdict = ""
            if n == 4:
                met = "met" if invitations >= TARGET else "not met"
                verdict = f"  (target ≥ {TARGET}× invitations/s: {met})"
            lines.append(
                f"PostgreSQL, {in_flight} in flight, {n} processes ÷ 1: invitations/s "
                f"{invitations:.2f}×, turns/s {turns:.2f}×{verdict}"
            )
    return lines


def report(
    results: list[Result], args: argparse.Namespace, notes: list[str], seconds: float
) -> str:
    """The table, the scaling ratios and, if profiled, where the largest PostgreSQL run spent
    its CPU."""
    width = max(len(r.config.label) for r in results) + 2
    lines = [
        f"Scale bench: {args.invitations} invitations (batches of {args.batch}, "
        f"{args.callers} callers), then {args.customers} customers × {len(TURN_SCRIPT)} turns "
        f"({args.concurrency} at a time, webhooks round-robin); fake Bot API answering after "
        f"{args.latency * 1000:.0f} ms per call",
        f"(cxbot serve: Telegram webhook, [delivery] max_in_flight = "
        f"{' and '.join(map(str, args.max_in_flight))}, 32 lanes per delivery pass, 8 Bot API "
        f"connections per process; the fake and the driver in this process; {os.cpu_count()} "
        f"CPUs, Python {sys.version.split()[0]})",
        *notes,
        "",
        head(width),
        *(row(r, width) for r in results),
        "",
    ]
    lines += ratio_lines(results)
    for r in results:
        lines += profile_lines(r, args.profile)
    lines.append(f"{len(results)} configurations in {seconds:.0f} s")
    return "\n".join(lines)


def _numbers(text: str) -> list[int]:
    """ "1,2,4" → [1, 2, 4] (sorted, each once)."""
    return sorted({int(n) for n in text.split(",") if n.strip()})


def plan(args: argparse.Namespace, postgres: bool) -> list[Config]:
    """The configurations, in order: per max_in_flight, PostgreSQL fleets then SQLite × 1;
    then, with --profile, the largest PostgreSQL fleet again under py-spy."""
    configs: list[Config] = []
    for in_flight in args.max_in_flight:
        if postgres:
            configs += [
                Config(len(configs) + i, "PostgreSQL", n, in_flight)
                for i, n in enumerate(args.processes)
            ]
        if not args.no_sqlite:
            configs.append(Config(len(configs), "SQLite", 1, in_flight))
    if postgres and args.profile is not None:
        largest = Config(
            len(configs), "PostgreSQL", max(args.processes), max(args.max_in_flight), True
        )
        configs.append(largest)
    return configs


def main(argv: list[str] | None = None) -> None:
    """Parse the options, measure every configuration, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--invitations", type=int, default=600, help="per configuration (600)")
    parser.add_argument("--customers", type=int, default=100, help="who answer (100)")
    parser.add_argument("--concurrency", type=int, default=40, help="answering at a time (40)")
    parser.add_argument(
        "--processes", default="1,2,4", help="PostgreSQL fleet sizes, comma-separated (1,2,4)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="fake's seconds per call")
    parser.add_argument(
        "--max-in-flight",
        default="8",
        help="[delivery] max_in_flight per process; a comma-separated list runs each (8)",
    )
    parser.add_argument("--batch", type=int, default=100, help="invitations per POST (100)")
    parser.add_argument("--callers", type=int, default=4, help="concurrent POSTs (4)")
    parser.add_argument(
        "--database-url",
        default="",
        help=f"PostgreSQL server (default {DEFAULT_POSTGRES}, when it answers)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy files go here")
    args = parser.parse_args(argv)
    try:
        args.processes = _numbers(args.processes)
        args.max_in_flight = _numbers(args.max_in_flight)
    except ValueError:
        parser.error("--processes and --max-in-flight take numbers separated by commas: 1,2,4")
    counts = (args.invitations, args.customers, args.concurrency, args.batch, args.callers)
    if min(*args.processes, *args.max_in_flight, *counts) < 1:
        parser.error(
            "--processes, --max-in-flight, --invitations, --customers, --concurrency, --batch "
            "and --callers must be at least 1"
        )
    args.customers = min(args.customers, args.invitations)
    notes: list[str] = []
    postgres: Postgres | None = None
    if not args.no_postgres:
        postgres = Postgres(args.database_url or DEFAULT_POSTGRES)
        why = postgres.unreachable()
        if why is None:
            notes.append(f"PostgreSQL: {postgres.shown} (a fresh database per configuration)")
        elif args.database_url:
            raise SystemExit(f"--database-url: {postgres.shown} does not answer: {why}")
        else:
            notes.append(f"PostgreSQL: skipped, {postgres.shown} does not answer ({why})")
            postgres = None
    configs = plan(args, postgres is not None)
    if not configs:
        raise SystemExit("nothing to measure: no PostgreSQL and --no-sqlite")
    started = time.perf_counter()
    results = []
    for config in configs:
        say(f"scale bench: {config.label} …")
        with tempfile.TemporaryDirectory(prefix="cxbot-scale-") as tmp:
            work = Path(tmp)
            if config.database == "PostgreSQL":
                assert postgres is not None
                databases = postgres.database(f"cxbot_scale_{os.getpid()}_{config.number}")
            else:
                databases = sqlite_database(work)
            with databases as url:
                first_chat = 300_000 + config.number * 100_000
                results.append(run_config(config, url, args, work, first_chat))
        say(row(results[-1], len(config.label) + 2))
    print(report(results, args, notes, time.perf_counter() - started))


if __name__ == "__main__":
    main()
