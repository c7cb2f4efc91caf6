"""The Telegram bench's other process: the fake Bot API and the simulated customers.

    python bench/_telegram_driver.py --customers N --concurrency C --first-chat ID

bench/telegram.py starts this once per run, so that the fake server's threads and the customers'
event loop never take the interpreter lock from the bot being measured. The two processes talk
over this process's standard input and output, one JSON object (or word) a line:

    → {"base_url": ..., "token": ...}      the fake listens (127.0.0.1, port 0): point the bot here
    ← go                                    the bot is polling: run every customer's survey
    → {"updates", "seconds", "latencies", "api_calls"}   (or {"error": ...})
    ← stop                                  the bot has stopped: close the fake and exit

Each customer (chat ids `first_chat`, `first_chat + 1`, …) goes through SCRIPT: an update
pushed to the fake's getUpdates queue, then a wait until the bot's reply is recorded by the
fake. A reply's latency is the time from the update being queued to the fake recording the
bot's last message for that step (both on this process's clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path; the checkout's root takes its
# place (for tests/fakes), and bench/telegram.py cannot shadow python-telegram-bot.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from tests.fakes.telegram_api import ApiCall, FakeTelegramAPI  # noqa: E402

# One survey: what the customer does, and how many bot messages it brings.
SCRIPT: list[tuple[str, str]] = [
    ("text", "/start"),  # intro + NPS question
    ("press", "a:nps:9"),
    ("text", "Quick and friendly, thanks!"),
    ("press", "a:ces:6"),
    ("press", "a:csat:5"),
    ("text", "skip"),
]
EXPECTED_MESSAGES = [2, 1, 1, 1, 1, 1]
REPLY_TIMEOUT = 60.0  # seconds a customer waits for one reply before the run is declared failed


class Replies:
    """Counts the messages each chat received, and wakes customers waiting for a count."""

    def __init__(self, fake: FakeTelegramAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._counts: dict[int, int] = defaultdict(int)
        self._waiting: dict[int, tuple[int, asyncio.Future[float]]] = {}
        self.api_calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        fake.listeners.append(self._recorded)

    def _recorded(self, call: ApiCall) -> None:  # in a fake server thread
        if call.method != "getUpdates":
            with self._calls_lock:
                self.api_calls[call.method] += 1
        if call.method == "sendMessage" and call.status == 200:
            self._loop.call_soon_threadsafe(self._bump, int(call.body["chat_id"]), call.at)

    def _bump(self, chat: int, at: float) -> None:
        self._counts[chat] += 1
        waiting = self._waiting.get(chat)
        if waiting is not None and self._counts[chat] >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(at)

    async def until(self, chat: int, count: int) -> float:
        """When (perf_counter, as the fake recorded it) the chat had `count` messages."""
        future: asyncio.Future[float] = self._loop.create_future()
        self._waiting[chat] = (count, future)
        if self._counts[chat] >= count:
            future.set_result(time.perf_counter())
        try:
            return await asyncio.wait_for(future, REPLY_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(
                f"chat {chat} had {self._counts[chat]} of {count} messages after "
                f"{REPLY_TIMEOUT:.0f} s"
            ) from None
        finally:
            del self._waiting[chat]

    def calls_by_method(self) -> dict[str, int]:
        """Bot API calls the bot made so far (getUpdates aside), by method."""
        with self._calls_lock:
            return dict(self.api_calls)


async def drive(fake: FakeTelegramAPI, chats: list[int], concurrency: int) -> dict[str, Any]:
    """Run every customer's script, `concurrency` customers at a time; the run's figures."""
    replies = Replies(fake, asyncio.get_running_loop())
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for chat in chats:
        queue.put_nowait(chat)

    async def customer(chat: int) -> None:
        received = 0
        for (kind, value), expected in zip(SCRIPT, EXPECTED_MESSAGES, strict=True):
            if kind == "text":
                update = fake.send_text(chat, value)
            else:
                update = fake.press(chat, fake.last_message_id(chat), value)
            received += expected
            reply_at = await replies.until(chat, received)
            latencies.append(reply_at - fake.pushed_at(update["update_id"]))

    async def worker() -> None:
        while not queue.empty():
            await customer(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "updates": len(latencies),
        "seconds": seconds,
        "latencies": [round(x, 6) for x in latencies],
        "api_calls": replies.calls_by_method(),
    }


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _expect(word: str) -> None:
    line = sys.stdin.readline().strip()
    if line != word:
        raise SystemExit(f"bench driver: expected {word!r} from the bench, got {line!r}")


def main() -> None:
    """Serve the fake, wait for `go`, drive the customers, report, wait for `stop`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--first-chat", type=int, required=True)
    args = parser.parse_args()
    chats = [args.first_chat + i for i in range(args.customers)]
    with FakeTelegramAPI(max_poll_wait=1.0) as fake:
        _say({"base_url": fake.base_url, "token": fake.token})
        _expect("go")
        try:
            result = asyncio.run(drive(fake, chats, min(args.concurrency, len(chats))))
        except TimeoutError as exc:
            result = {"error": str(exc)}
        _say(result)
        _expect("stop")


if __name__ == "__main__":
    main()
