"""Where the machine's CPU went during a measured window, and py-spy profiles of processes.

- `CpuWindow`: from `/proc` (Linux), the CPU time of the whole machine and of named parts —
  the `cxbot serve` processes, this process (the fake Bot API and the load driver), the
  PostgreSQL server's processes — between `start()` and `stop()`; what is left is "other" (on
  a shared machine: other people's work). On a system without `/proc` every figure is None.
- `Profiler`: `py-spy record` attached to processes for a window (raw collapsed stacks, one
  file per process), and `summarize` — the share of samples by the part of the code on top of
  the stack (`subsystem`: the database driver, SQLAlchemy, the HTTP clients, asyncio, JSON…).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PY_SPY = Path(sys.executable).parent / "py-spy"


def _machine() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the machine since boot, all cores."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(ticks)
    idle = ticks[3] + ticks[4]
    return (total - idle) / _TICK, total / _TICK


def _process(pid: int) -> float | None:
    """CPU seconds (user + system) process `pid` used so far; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _named(name: str) -> dict[int, float]:
    """CPU seconds so far of every process whose command is `name` (e.g. postgres)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
        except OSError:
            continue
        used = _process(int(entry.name))
        if used is not None:
            found[int(entry.name)] = used
    return found


@dataclass
class CpuSplit:
    """CPU seconds of one window: the machine (busy of total) and its parts."""

    seconds: float  # wall-clock length of the window
    cores: int
    busy: float | None = None
    serve: float | None = None
    driver: float | None = None
    postgres: float | None = None

    @property
    def busy_share(self) -> float | None:
        """Share of all cores busy during the window (0–1)."""
        if self.busy is None or self.seconds <= 0:
            return None
        return self.busy / (self.seconds * self.cores)

    def share(self, part: float | None) -> float | None:
        """`part` as a share of all cores' time in the window (0–1)."""
        if part is None or self.seconds <= 0:
            return None
        return part / (self.seconds * self.cores)

    @property
    def other(self) -> float | None:
        """Busy time not accounted to serve, this process or PostgreSQL."""
        parts = (self.busy, self.serve, self.driver, self.postgres)
        if any(p is None for p in parts):
            return None
        return max(
            0.0, (self.busy or 0) - (self.serve or 0) - (self.driver or 0) - (self.postgres or 0)
        )


@dataclass
class CpuWindow:
    """Measures a window: `start()`, the work, `stop()` → `CpuSplit`."""

    serve_pids: Sequence[int]
    _wall: float = 0.0
    _machine: tuple[float, float] | None = None
    _serve: dict[int, float] = field(default_factory=dict)
    _driver: float = 0.0
    _postgres: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        """The window begins."""
        self._wall = time.perf_counter()
        self._machine = _machine()
        self._serve = {p: v for p in self.serve_pids if (v := _process(p)) is not None}
        self._driver = _own()
        self._postgres = _named("postgres")

    def stop(self) -> CpuSplit:
        """The window ends: what each part used in it."""
        seconds = time.perf_counter() - self._wall
        split = CpuSplit(seconds=seconds, cores=os.cpu_count() or 1)
        machine = _machine()
        if machine is None or self._machine is None:
            return split
        split.busy = machine[0] - self._machine[0]
        split.serve = sum(
            (_process(p) or v) - v for p, v in self._serve.items()
        )  # a process gone meanwhile counts as idle since
        split.driver = _own() - self._driver
        split.postgres = sum(
            used - self._postgres.get(pid, 0.0) for pid, used in _named("postgres").items()
        )
        return split


def _own() -> float:
    times = os.times()
    return times.user + times.system


class Profiler:
    """`py-spy record` of each process in `pids` (raw collapsed stacks, `folder/<name>-<pid>.txt`)
    from `start()` to `stop()`; `rate` samples a second, without pausing the processes."""

    def __init__(self, folder: Path, name: str, pids: Iterable[int], *, rate: int = 50) -> None:
        self.folder = folder
        self.files = [folder / f"{name}-{pid}.txt" for pid in pids]
        self._pids = list(pids)
        self._rate = rate
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Attach to every process."""
        if not PY_SPY.exists():
            raise SystemExit(
                f"--profile needs py-spy beside {sys.executable} (the dev extra installs it: "
                "pip install -e '.[dev]')"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        for pid, out in zip(self._pids, self.files, strict=True):
            self._procs.append(
                subprocess.Popen(
                    [
                        str(PY_SPY),
                        "record",
                        "--pid",
                        str(pid),
                        "--format",
                        "raw",
                        "--output",
                        str(out),
                        "--rate",
                        str(self._rate),
                        "--nonblocking",
                        "--gil",  # only the thread holding the interpreter: CPU, not waits
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.5)  # py-spy attaches before the window's work begins

    def stop(self) -> list[Path]:
        """Detach (py-spy writes its file on SIGINT); the files written."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return [f for f in self.files if f.exists()]


# The first match, on the innermost frame's file, names where a sample's time goes.
_SUBSYSTEMS = (
    ("psycopg", "database driver (psycopg)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("sqlmodel", "SQLAlchemy"),
    ("sqlite3", "database driver (sqlite3)"),
    ("aiohttp", "HTTP client (aiohttp)"),
    ("telegram/", "python-telegram-bot"),
    ("uvicorn", "HTTP server (uvicorn, starlette, fastapi)"),
    ("starlette", "HTTP server (uvicorn, starlette, fastapi)"),
    ("fastapi", "HTTP server (uvicorn, starlette, fastapi)"),
    ("pydantic", "pydantic"),
    ("json", "JSON"),
    ("asyncio", "asyncio (event loop)"),
    ("selectors", "asyncio (event loop)"),
    ("concurrent/futures", "worker threads (to_thread)"),
    ("threading", "worker threads (to_thread)"),
    ("/storage/", "cxbot storage/"),
    ("/bot/", "cxbot bot/"),
    ("/adapters/", "cxbot adapters/"),
    ("/web/", "cxbot web/"),
)


def subsystem(frame: str) -> str:
    """The part of the code a frame (`function (path:line)`) belongs to."""
    for needle, name in _SUBSYSTEMS:
        if needle in frame:
            return name
    return "other Python"


def summarize(
    files: Iterable[Path], *, by: Sequence[tuple[str, str]] | None = None, top: int = 8
) -> tuple[int, list[tuple[str, float]]]:
    """(samples, [(name, share)] largest first) over raw py-spy files of every process.

    Without `by`: the subsystem of the frame on top of the stack (where the time is spent).
    With `by` ((needle, name) pairs): the first frame, from the top of the stack down, that
    contains a needle names the sample (what the time is spent for); "elsewhere" if none does.
    """
    shares: Counter[str] = Counter()
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            if by is None:
                shares[subsystem(frames[-1])] += int(count)
            else:
                shares[_first_match(frames, by)] += int(count)
    total = sum(shares.values())
    if not total:
        return 0, []
    return total, [(name, n / total) for name, n in shares.most_common(top)]


_OWN = ("(bot/", "(storage/", "(web/", "(adapters/")


def breakdown(files: Iterable[Path], needle: str, *, top: int = 6) -> list[tuple[str, float]]:
    """Among samples with a frame containing `needle`: [(callee, share)], the callee being the
    next two cxbot frames under it (e.g. "Invitations.create_in > invitation_facts")."""
    shares: Counter[str] = Counter()
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            at = next((i for i, f in enumerate(frames) if needle in f), None)
            if at is None:
                continue
            below = [f.split(" (")[0] for f in frames[at + 1 :] if any(o in f for o in _OWN)]
            shares[" > ".join(below[:2]) or "(itself)"] += int(count)
    total = sum(shares.values())
    return [(name, n / total) for name, n in shares.most_common(top)] if total else []


def _first_match(frames: Sequence[str], by: Sequence[tuple[str, str]]) -> str:
    for frame in reversed(frames):
        for needle, name in by:
            if needle in frame:
                return name
    return "elsewhere"
