"""Several `cxbot serve` processes on one database, and the invitations API they serve.

What the scale test (tests/bot/test_scale_kill.py) and the scale bench (bench/scale.py) share:

- `Fleet`: N `cxbot serve` subprocesses (`tests.fakes.kill_harness.HttpServe`, port 0), one
  log each, started together and waited on until each printed its URL; `kill(i)` SIGKILLs one
  (and reaps it, so that the others' delivery workers see it dead), `stop()` the rest (SIGTERM);
- `create_api_key`: `cxbot apikeys create` in a subprocess (it also migrates a fresh database),
  the key read from its last line;
- `seed_customers`: customers who wrote to the bot before, in one INSERT;
- `post_batches`: `POST /api/v1/invitations/batch` in rows of up to 1,000, spread round-robin
  over the processes and posted at once, as several callers would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from storage.database import create_db_engine
from storage.tables import Customer
from tests.fakes.kill_harness import HttpServe

BATCH_LIMIT = 1000  # the API's largest batch


def create_api_key(env: dict[str, str], cwd: Path, *, name: str = "scale") -> str:
    """A new invite-scope key, made by `cxbot apikeys create` as an operator would."""
    exe = Path(sys.executable).parent / "cxbot"
    done = subprocess.run(
        [str(exe), "apikeys", "create", "--scope", "invite", "--name", name],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cxbot apikeys create failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def seed_customers(db_url: str, chats: Sequence[int], *, channel: str = "telegram") -> None:
    """Customers who wrote to the bot before (one INSERT), as a helpdesk's would have."""
    engine = create_db_engine(db_url)
    try:
        with Session(engine) as s:
            s.add_all(
                Customer(channel=channel, external_id=str(chat), first_name="Ann", locale="en")
                for chat in chats
            )
            s.commit()
    finally:
        engine.dispose()


def invitation_rows(
    chats: Sequence[int],
    *,
    send_after: datetime | None,
    touchpoint: str = "purchase",
    flow_id: str | None = None,
) -> list[dict[str, Any]]:
    """One Telegram invitation per chat (interaction `<touchpoint>-<chat>`)."""
    rows = []
    for chat in chats:
        row: dict[str, Any] = {
            "channel": "telegram",
            "user_id": str(chat),
            "touchpoint": touchpoint,
            "interaction_id": f"{touchpoint}-{chat}",
            "context": {"ticket_id": f"order {chat}"},
        }
        if flow_id is not None:
            row["flow_id"] = flow_id
        if send_after is not None:
            row["send_after"] = send_after.isoformat()
        rows.append(row)
    return rows


def batches_of(rows: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """`rows` cut into batches of at most `size` (at most the API's 1,000)."""
    size = min(size, BATCH_LIMIT)
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


def post_batch(
    http: httpx.Client, url: str, key: str, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """POST one batch to the process at `url`; each row's result. RuntimeError for an answer
    other than 200."""
    answer = http.post(
        f"{url}/api/v1/invitations/batch",
        json={"invitations": list(rows)},
        headers={"Authorization": f"Bearer {key}"},
    )
    if answer.status_code != 200:
        raise RuntimeError(f"HTTP {answer.status_code} from {url}: {answer.text[:500]}")
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def post_batches(
    urls: Sequence[str], key: str, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """POST `rows` in batches of 1,000, batch i to `urls[i % len(urls)]`, all at once; every
    row's result, in order."""
    batches = batches_of(rows, BATCH_LIMIT)

    def post(number: int) -> list[dict[str, Any]]:
        with httpx.Client(timeout=300) as http:
            return post_batch(http, urls[number % len(urls)], key, batches[number])

    with ThreadPoolExecutor(max(1, len(batches))) as pool:
        return [row for done in pool.map(post, range(len(batches))) for row in done]


@dataclass
class Fleet:
    """`count` `cxbot serve` processes with the same environment, logs `serve-<i>.log`."""

    env: dict[str, str]
    cwd: Path
    count: int
    servers: list[HttpServe] = field(default_factory=list)

    def start(self, *, timeout: float = 120.0) -> list[str]:
        """Start every process at once (the first start migrates, the others wait for it);
        their URLs, once each serves. RuntimeError (with the log's end) if one does not."""
        self.servers = [
            HttpServe(self.env, self.cwd, self.cwd / f"serve-{i}.log") for i in range(self.count)
        ]
        for server in self.servers:
            server.start()
        deadline = time.monotonic() + timeout
        while not all(s.up for s in self.servers):
            for server in self.servers:
                if server.proc is not None and server.proc.poll() is not None:
                    raise RuntimeError(f"cxbot serve exited at start:\n{_tail(server.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"cxbot serve did not start within {timeout:.0f} s")
            time.sleep(0.05)
        return self.urls

    @property
    def urls(self) -> list[str]:
        """Each process's base URL."""
        return [s.url for s in self.servers if s.url is not None]

    @property
    def pids(self) -> list[int]:
        """Each process's id."""
        return [s.proc.pid for s in self.servers if s.proc is not None]

    def kill(self, index: int) -> int:
        """SIGKILL process `index` and reap it (a zombie would still look alive to the
        survivors' check for dead claim holders); its pid."""
        proc = self.servers[index].proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return proc.pid

    def alive(self) -> list[int]:
        """Indexes of the processes still running."""
        return [
            i for i, s in enumerate(self.servers) if s.proc is not None and s.proc.poll() is None
        ]

    def stop(self) -> None:
        """SIGTERM every process still running and wait (SIGKILL after 20 s)."""
        running = [s.proc for s in self.servers if s.proc is not None and s.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self, chars: int = 3000) -> str:
        """The end of every process's log, for a failing assertion's message."""
        return "\n".join(f"--- {s.log.name}\n{_tail(s.log, chars)}" for s in self.servers)


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"
