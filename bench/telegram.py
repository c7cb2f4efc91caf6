"""Benchmark the Telegram channel end to end over the fake Bot API, beside a minimal PTB bot.

    python bench/telegram.py [--customers 1000] [--concurrency 50] [--database-url URL]

Simulated customers answer a whole survey each as Telegram users would: `/start`, a button for
NPS, a typed comment, buttons for CES and CSAT, a typed last answer — six updates, each pushed
to the fake server's getUpdates queue, each waited on until the bot's reply arrives there.
Both bots run python-telegram-bot's Application with long polling against the same fake
server (tests/fakes/telegram_api.py) in the same run:

- cxbot: what `cxbot serve` runs — long polling that records each batch in the inbox before
  confirming it, the inbox worker (one transaction per update: claim, turn, outbox rows), and
  the delivery worker sending the outbox in order per chat;
- baseline: a minimal ConversationHandler survey bot keeping answers in a dict — the same
  questions, keyboards, callback answers and edits, and nothing else. It handles updates one at
  a time (PTB's default): a ConversationHandler moves to its next state only when a callback
  returns, so with concurrent updates a customer's quick next message can meet the old state
  and be dropped — which this benchmark's customers, answering the moment a question arrives,
  do trigger. cxbot handles different chats concurrently and one chat's updates in order.

Prints updates per second and reply latency percentiles (update queued → the bot's reply, the
next question or the thanks, recorded by the fake).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file would shadow the
# `telegram` package it benchmarks; the checkout's root takes its place (for bot/ and tests/).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

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

from bot.app import build_app  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.serve import plan_channels  # noqa: E402
from tests.fakes.telegram_api import ApiCall, FakeTelegramAPI  # noqa: E402

# One survey: (what the customer does, how many bot messages it brings).
Step = tuple[str, str]
SCRIPT: list[Step] = [
    ("text", "/start"),  # intro + NPS question
    ("press", "a:nps:9"),
    ("text", "Quick and friendly, thanks!"),
    ("press", "a:ces:6"),
    ("press", "a:csat:5"),
    ("text", "skip"),
]
EXPECTED_MESSAGES = [2, 1, 1, 1, 1, 1]


class Replies:
    """Counts the messages each chat received, and wakes customers waiting for a count."""

    def __init__(self, fake: FakeTelegramAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._counts: dict[int, int] = defaultdict(int)
        self._waiting: dict[int, tuple[int, asyncio.Future[float]]] = {}
        fake.listeners.append(self._recorded)

    def _recorded(self, call: ApiCall) -> None:  # in a fake server thread
        if call.method == "sendMessage" and call.status == 200:
            self._loop.call_soon_threadsafe(self._bump, int(call.body["chat_id"]), call.at)

    def _bump(self, chat: int, at: float) -> None:
        self._counts[chat] += 1
        waiting = self._waiting.get(chat)
        if waiting is not None and self._counts[chat] >= waiting[0] and not waiting[1].done():
            waiting[1].set_result(at)

    async def until(self, chat: int, count: int, timeout: float = 60.0) -> float:
        """When (perf_counter, as the fake recorded it) the chat had `count` messages."""
        future: asyncio.Future[float] = self._loop.create_future()
        self._waiting[chat] = (count, future)
        if self._counts[chat] >= count:
            future.set_result(time.perf_counter())
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            del self._waiting[chat]


@dataclass
class Result:
    """One bot's run."""

    name: str
    updates: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the whole process's (bot, fake server and customers alike)
    latencies: list[float] = field(default_factory=list)


async def drive(
    fake: FakeTelegramAPI, replies: Replies, chats: list[int], concurrency: int, result: Result
) -> None:
    """Run every customer's script, `concurrency` customers at a time."""
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
            result.latencies.append(reply_at - fake.pushed_at(update["update_id"]))
            result.updates += 1

    async def worker() -> None:
        while not queue.empty():
            await customer(queue.get_nowait())

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu


# -- the baseline: a minimal python-telegram-bot ConversationHandler survey ----------------------

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


# -- running both ---------------------------------------------------------------------------------


async def run_cxbot(
    fake: FakeTelegramAPI, replies: Replies, args: argparse.Namespace, data_dir: str
) -> Result:
    environ = {
        "CXBOT_GENERAL__DATA_DIR": data_dir,
        "CXBOT_TELEGRAM__TOKEN": fake.token,
        "CXBOT_TELEGRAM__BASE_URL": fake.base_url,
        "CXBOT_SENTIMENT__ENABLED": "false",
    }
    if args.database_url:
        environ["CXBOT_DATABASE__URL"] = args.database_url
    app = build_app(load_settings(None, environ=environ))
    # The parts `cxbot serve` runs: polling into the inbox, the inbox and delivery workers.
    plan = plan_channels(app)
    result = Result("cxbot (inbox + engine + outbox)")
    for service in plan.services:
        await service.start()
    tasks = [asyncio.create_task(task.run(), name=task.name) for task in plan.tasks]
    try:
        chats = [10_000_000 + i for i in range(args.customers)]
        await drive(fake, replies, chats, args.concurrency, result)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for service in reversed(plan.services):
            await service.stop()
        app.close()
    return result


async def run_baseline(fake: FakeTelegramAPI, replies: Replies, args: argparse.Namespace) -> Result:
    application = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    application.add_handler(baseline_handler())
    result = Result("PTB ConversationHandler (dict)")
    await application.initialize()
    assert application.updater is not None
    await application.updater.start_polling(timeout=10)
    await application.start()
    try:
        chats = [20_000_000 + i for i in range(args.customers)]
        await drive(fake, replies, chats, args.concurrency, result)
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
    return result


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"Telegram bench: {args.customers} customers × {len(SCRIPT)} updates, "
        f"{args.concurrency} customers at a time, long polling a loopback fake Bot API "
        f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})",
        f"{'bot':<34}{'updates':>8}{'seconds':>9}{'updates/s':>11}"
        f"{'CPU ms/upd':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for r in results:
        ms = [x * 1000 for x in r.latencies]
        lines.append(
            f"{r.name:<34}{r.updates:>8}{r.seconds:>9.2f}{r.updates / r.seconds:>11.0f}"
            f"{r.cpu_seconds * 1000 / r.updates:>11.1f}"
            f"{statistics.median(ms):>9.1f}{_percentile(ms, 0.99):>9.1f}{max(ms):>9.1f}"
        )
    cxbot, baseline = results[0], results[-1]
    ratio = (cxbot.updates / cxbot.seconds) / (baseline.updates / baseline.seconds)
    lines.append(f"cxbot / baseline updates/s: {ratio:.2f}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    with FakeTelegramAPI(max_poll_wait=1.0) as fake, tempfile.TemporaryDirectory() as data:
        replies = Replies(fake, asyncio.get_running_loop())
        results = []
        if args.bots in ("both", "cxbot"):
            results.append(await run_cxbot(fake, replies, args, data))
        if args.bots in ("both", "baseline"):
            results.append(await run_baseline(fake, replies, args))
    print(report(results, args))


def main() -> None:
    """Parse the options, run both bots, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    parser.add_argument("--bots", choices=["both", "cxbot", "baseline"], default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")  # PTB's per_message advice for the baseline's handler
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
