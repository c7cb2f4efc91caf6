"""What kill tests share: `cxbot serve` as a subprocess, killers, and patient customers.

Customers only ever answer what they received: a customer who hears nothing waits, so a survey
that would need a nudge to finish never finishes and the test fails. A killer SIGKILLs serve at
the moment it is armed for — just after the platform handed over a batch of updates (long
polling) or just after serve answered a webhook delivery, while a reply is on its way, or at
once — and the test restarts it. `HttpServe` keeps the current process and the URL it printed;
`read_outcome` reads what the database holds afterwards.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from storage import tables
from storage.database import create_db_engine
from tests.conftest import _postgres_database

AFTER_BATCH = "after a batch was fetched"
AFTER_ANSWER = "after an event was answered"
MID_SEND = "while a reply was being sent"
AT_RANDOM = "at a random moment"
KINDS = (AFTER_BATCH, MID_SEND, AT_RANDOM)  # long polling
WEBHOOK_KINDS = (AFTER_ANSWER, MID_SEND, AT_RANDOM)  # the platform posts to serve
_HTTP_ON = re.compile(r"HTTP on (http://\S+)")


def kill_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database for serve (`kind`: sqlite or postgres): a file, or a new database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'kill.db'}"
    else:
        yield from _postgres_database()


def serve_env(data_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a `cxbot serve` subprocess: its data folder and database, any free
    port, no sentiment model, and `settings` given as `telegram__token="…"` (CXBOT_ names)."""
    return {
        "CXBOT_GENERAL__DATA_DIR": str(data_dir),
        "CXBOT_DATABASE__URL": database_url,
        "CXBOT_SERVER__PORT": "0",
        "CXBOT_SENTIMENT__ENABLED": "false",
        **{f"CXBOT_{key.upper()}": value for key, value in settings.items()},
    }


def repeated(sent: Iterable[tuple[object, str]]) -> int:
    """How many messages were sent again: (recipient, text) pairs beyond their first."""
    return sum(n - 1 for n in Counter(sent).values())


def start_serve(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`cxbot serve` in a new process, its output appended to `log`."""
    exe = Path(sys.executable).parent / "cxbot"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(exe), "serve"], env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=out
        )


class HttpServe:
    """`cxbot serve` with an HTTP port (`[server] port = 0`): its process and its URL.

    `start` (again after a kill) launches a new process, which prints "HTTP on http://…" to
    the log once it serves. Until then `url` is the previous process's URL, as for a platform
    posting to a fixed address: its connections are refused while serve is down or starting.
    """

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.env, self.cwd, self.log = env, cwd, log
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._url: str | None = None
        self._up = False

    def start(self) -> subprocess.Popen[bytes]:
        """A new serve process (its URL unknown until it prints it)."""
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self._up = False
        self.proc = start_serve(self.env, self.cwd, self.log)
        return self.proc

    @property
    def url(self) -> str | None:
        """The base URL serve printed last (None before the first process printed one)."""
        self._look()
        return self._url

    @property
    def up(self) -> bool:
        """Whether the current process printed its URL (it serves)."""
        self._look()
        return self._up

    def _look(self) -> None:
        if self._up or not self.log.exists():
            return
        with self.log.open("rb") as out:
            out.seek(self._offset)
            found = _HTTP_ON.search(out.read().decode(errors="replace"))
        if found:
            self._url = found.group(1).rstrip(";")
            self._up = True


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

    def on_answered(self) -> None:
        """Serve answered a delivery (the event is recorded): kill just after."""
        self._fire(AFTER_ANSWER, self.rng.uniform(0.002, 0.02))

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
    _due: list[tuple[float, Callable[[], object]]] = field(default_factory=list)

    def later(self, action: Callable[[], object]) -> None:
        """Do `action` after a thinking pause."""
        self._due.append((time.monotonic() + self.rng.uniform(*self.think), action))

    def answer_once(self, user: str, key: str, action: Callable[[], object]) -> None:
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


@dataclass
class Outcome:
    """What the database holds after a kill test."""

    inbox: dict[str, tables.InboxUpdate]  # event key → row
    states: dict[str, str]  # customer external id → conversation state
    answers: dict[str, list[str]]  # customer external id → question ids, in stored order

    def unprocessed(self) -> list[str]:
        """Keys of inbox rows not processed, or whose last attempt failed."""
        return [
            k
            for k, row in self.inbox.items()
            if row.processed_at is None or row.last_error is not None
        ]


def read_outcome(db_url: str) -> Outcome:
    """Inbox rows, conversation states and stored answers (all customers)."""
    engine = create_db_engine(db_url)
    try:
        with Session(engine) as s:
            inbox = {row.event_key: row for row in s.exec(select(tables.InboxUpdate))}
            customers = {c.id: c.external_id for c in s.exec(select(tables.Customer))}
            conversations = s.exec(select(tables.Conversation))
            states = {customers[c.customer_id]: c.state for c in conversations}
            answers: dict[str, list[str]] = {}
            for a in s.exec(select(tables.Answer).order_by(col(tables.Answer.id))):
                answers.setdefault(customers[a.customer_id], []).append(a.question_id)
    finally:
        engine.dispose()
    return Outcome(inbox=inbox, states=states, answers=answers)
