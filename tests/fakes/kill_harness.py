"""What kill tests share: `cxbot serve` as a subprocess, killers, and patient customers.

Customers only ever answer what they received: a customer who hears nothing waits, so a survey
that would need a nudge to finish never finishes and the test fails. A killer SIGKILLs serve at
the moment it is armed for — just after the platform handed over a batch of updates, while a
reply is on its way, or at once — and the test restarts it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

AFTER_BATCH = "after a batch was fetched"
MID_SEND = "while a reply was being sent"
AT_RANDOM = "at a random moment"
KINDS = (AFTER_BATCH, MID_SEND, AT_RANDOM)


def start_serve(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`cxbot serve` in a new process, its output appended to `log`."""
    exe = Path(sys.executable).parent / "cxbot"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(exe), "serve"], env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=out
        )


@dataclass
class Killer:
    """SIGKILLs the current serve process at the armed moment (called from fakes' threads)."""

    rng: random.Random
    proc: subprocess.Popen[bytes] | None = None
    armed: str | None = None
    kills: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, kind: str) -> None:
        """Kill at the next moment of this kind (AT_RANDOM: now)."""
        with self._lock:
            self.armed = kind
        if kind == AT_RANDOM:
            self._fire(kind, 0.0)

    def on_batch(self) -> None:
        """The platform is handing over updates: kill just after they arrive."""
        self._fire(AFTER_BATCH, self.rng.uniform(0.002, 0.02))

    def on_send(self) -> None:
        """A reply reached the platform, which answers after its latency: kill meanwhile."""
        self._fire(MID_SEND, self.rng.uniform(0.005, 0.06))

    def _fire(self, kind: str, delay: float) -> None:
        with self._lock:
            if self.armed != kind or self.proc is None:
                return
            self.armed = None
            proc = self.proc
        timer = threading.Timer(delay, self._kill, args=(proc, kind))
        timer.daemon = True
        timer.start()

    def _kill(self, proc: subprocess.Popen[bytes], kind: str) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            with self._lock:
                self.kills.append(kind)

    def killed(self, proc: subprocess.Popen[bytes]) -> bool:
        """Whether `proc` has died."""
        return proc.poll() is not None


@dataclass
class Customer:
    """One simulated customer: what they answered, and answers they are about to give."""

    user: str
    answered: set[str] = field(default_factory=set)


@dataclass
class Customers:
    """Patient customers: each received question is answered once, after a short pause.

    `decide(user, key, ...)` is the scenario's: given a received question, the action to take.
    `pump()` performs the actions that are due; actions are callables pushing platform updates.
    """

    rng: random.Random
    think: tuple[float, float] = (0.0, 0.25)
    people: dict[str, Customer] = field(default_factory=dict)
    _due: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def later(self, action: Callable[[], None]) -> None:
        """Do `action` after a thinking pause."""
        self._due.append((time.monotonic() + self.rng.uniform(*self.think), action))

    def answer_once(self, user: str, key: str, action: Callable[[], None]) -> None:
        """Answer question `key` unless this customer already did."""
        person = self.people.setdefault(user, Customer(user))
        if key in person.answered:
            return
        person.answered.add(key)
        self.later(action)

    def pump(self) -> None:
        """Perform the actions that are due."""
        now = time.monotonic()
        due = [a for t, a in self._due if t <= now]
        self._due = [(t, a) for t, a in self._due if t > now]
        for action in due:
            action()
