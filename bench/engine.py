"""Benchmark the dialogue engine: simulated customers answer the default flow on SQLite.

    python bench/engine.py [--customers 1000] [--concurrency 50] [--database-url URL]

Each customer opens a survey and answers every question through the in-memory channel, the
same path a Telegram or Slack message takes after its adapter. Prints turns per second,
turn latency percentiles (one turn = one customer message in, the bot's replies out, one
database transaction), the service time of a turn apart from queueing (the CPU time of the
turn's transaction in its worker thread, without waiting for the writer or the interpreter
lock), and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from adapters.console import MemoryChannel
from bot.app import build_app
from bot.config import load_settings
from bot.engine import Engine

COMMENTS = [
    "Great support, thanks!",
    "Took far too long to get an answer.",
    "The agent was friendly but the app keeps crashing",
    "",
]


def _answer_for(question_id: str | None, rng: random.Random) -> str:
    """A plausible typed answer for whatever the bot just asked."""
    if question_id == "nps":
        return str(rng.choice([2, 5, 7, 8, 9, 10, 10]))
    if question_id == "ces":
        return rng.choice(["6", "7", "5/7", "three"])
    if question_id == "csat":
        return rng.choice(["5", "4", "★★★★☆", "2"])
    return rng.choice(COMMENTS)


async def _customer(engine: Engine, index: int, latencies: list[float], rng: random.Random) -> int:
    """One customer's whole survey; returns the number of turns taken."""
    channel = MemoryChannel(engine.handle, user_id=f"bench-{index}")
    channel.receive(await engine.begin(channel="console", user_id=f"bench-{index}"))
    turns = 0
    for _ in range(20):  # the default flow has 5 questions; the cap guards against loops
        pending = channel.pop_all()
        asking = next((m.question_id for m in reversed(pending) if m.question_id), None)
        if asking is None:
            break
        started = time.perf_counter()
        await channel.push(_answer_for(asking, rng))
        latencies.append(time.perf_counter() - started)
        turns += 1
    return turns


def _time_service(engine: Engine) -> list[float]:
    """Time each turn's own work (its transaction, in the worker thread), apart from the time
    it waited for a thread and for the database's one writer: latency − service = queueing."""
    service: list[float] = []
    run_turn = engine._run_turn

    def timed(*args: Any, **kwargs: Any) -> Any:
        # CPU time of this thread: what the turn itself costs, without the time it spent
        # waiting for the database's one writer or for the interpreter lock.
        started = time.thread_time()
        try:
            return run_turn(*args, **kwargs)
        finally:
            service.append(time.thread_time() - started)

    engine._run_turn = timed  # type: ignore[method-assign]
    return service


async def _run(customers: int, concurrency: int, database_url: str, data_dir: str) -> None:
    settings = load_settings(
        None,
        environ={"CXBOT_GENERAL__DATA_DIR": data_dir, "CXBOT_DATABASE__URL": database_url},
    )
    app = build_app(settings)
    service = _time_service(app.engine)
    latencies: list[float] = []
    rng = random.Random(7)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            return await _customer(app.engine, i, latencies, rng)

    started = time.perf_counter()
    done = 0
    turns = 0
    for batch_start in range(0, customers, 100):
        results = await asyncio.gather(
            *(one(i) for i in range(batch_start, min(customers, batch_start + 100)))
        )
        turns += sum(results)
        done += len(results)
        print(f"  … {done}/{customers} customers", file=sys.stderr)
    elapsed = time.perf_counter() - started
    app.close()

    ms = sorted(x * 1000 for x in latencies)
    own = sorted(x * 1000 for x in service)

    def pct(p: float, values: list[float] | None = None) -> float:
        values = ms if values is None else values
        return values[min(len(values) - 1, int(p / 100 * len(values)))]

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"customers            {customers}  (concurrency {concurrency})")
    print(f"turns                {turns}  in {elapsed:.1f} s")
    print(f"throughput           {turns / elapsed:.0f} turns/s")
    print(
        f"turn latency         p50 {pct(50):.1f} ms   p90 {pct(90):.1f} ms   "
        f"p99 {pct(99):.1f} ms   mean {statistics.fmean(ms):.1f} ms"
    )
    print(
        f"service time         p50 {pct(50, own):.1f} ms   p90 {pct(90, own):.1f} ms   "
        f"p99 {pct(99, own):.1f} ms   mean {statistics.fmean(own):.1f} ms"
        "   (CPU of the turn's transaction in its worker thread)"
    )
    queueing = statistics.fmean(ms) - statistics.fmean(own)
    print(
        f"queueing             mean {queueing:.1f} ms  "
        "(latency − service: waiting for the writer, a thread, the interpreter)"
    )
    print(f"peak memory (RSS)    {peak_mb:.0f} MiB")


def main() -> None:
    """Parse options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", default="", help="default: a new SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cxbot-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        print(f"database             {url.split('@')[-1]}")
        asyncio.run(_run(args.customers, args.concurrency, url, tmp))


if __name__ == "__main__":
    main()
