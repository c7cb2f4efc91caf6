"""The console channel: `cxbot chat` in a terminal or a pipe, and the in-memory test harness.

Both render an `OutgoingMessage` the same way: the text, then scale choices on one line
(`[0] [1] … [10]`) or options as numbered lines. Typing a number picks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.messages import ChoiceStyle, IncomingMessage, MessageKind, OutgoingMessage

CHANNEL = "console"

Handler = Callable[[IncomingMessage], Awaitable[list[OutgoingMessage]]]


def render(message: OutgoingMessage) -> str:
    """The message as terminal text."""
    if not message.choices:
        return message.text
    if message.choice_style == ChoiceStyle.SCALE:
        return message.text + "\n" + " ".join(f"[{c.label}]" for c in message.choices)
    options = "\n".join(f"  {i}. {c.label}" for i, c in enumerate(message.choices, start=1))
    return f"{message.text}\n{options}"


class MemoryChannel:
    """An in-memory channel: `push(text)` as the customer, `pop()` the bot's next message.

    Used by the engine tests and the benchmark; any handler with the engine's signature works.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        user_id: str,
        channel: str = CHANNEL,
        locale: str | None = None,
        first_name: str | None = None,
    ) -> None:
        self._handler = handler
        self.user_id = user_id
        self.channel = channel
        self.locale = locale
        self.first_name = first_name
        self.outbox: deque[OutgoingMessage] = deque()

    async def push(
        self, text: str, *, kind: MessageKind = MessageKind.TEXT
    ) -> list[OutgoingMessage]:
        """Send `text` as the customer; the replies are queued and also returned."""
        return await self._send(self._message(text=text, kind=kind))

    async def press(self, payload: str) -> list[OutgoingMessage]:
        """Press the button with this payload."""
        return await self._send(self._message(payload=payload, kind=MessageKind.BUTTON))

    def _message(
        self, *, kind: MessageKind, text: str | None = None, payload: str | None = None
    ) -> IncomingMessage:
        return IncomingMessage(
            channel=self.channel,
            user_id=self.user_id,
            text=text,
            payload=payload,
            kind=kind,
            locale=self.locale,
            first_name=self.first_name,
        )

    async def _send(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        replies = await self._handler(msg)
        self.outbox.extend(replies)
        return replies

    def receive(self, replies: list[OutgoingMessage]) -> None:
        """Queue messages the bot sent on its own initiative (a survey it opened)."""
        self.outbox.extend(replies)

    def pop(self) -> OutgoingMessage:
        """The oldest bot message not yet read (IndexError when there is none)."""
        return self.outbox.popleft()

    def pop_all(self) -> list[OutgoingMessage]:
        """Every unread bot message, oldest first."""
        out = list(self.outbox)
        self.outbox.clear()
        return out


async def run_console(
    handler: Handler,
    opening: list[OutgoingMessage],
    *,
    user_id: str,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Talk to the bot line by line until end of input; returns the exit status (0).

    On a terminal a `> ` prompt is shown; from a pipe each line is one customer message and only
    the bot's messages are printed.
    """
    inp = stdin or sys.stdin
    out = stdout or sys.stdout
    interactive = inp.isatty()

    def show(messages: list[OutgoingMessage]) -> None:
        for message in messages:
            out.write(render(message) + "\n")
        out.flush()

    show(opening)
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = await read_line(inp)
        if not line:  # end of input
            if interactive:
                out.write("\n")
            return 0
        text = line.rstrip("\r\n")
        show(await handler(IncomingMessage(channel=CHANNEL, user_id=user_id, text=text)))


async def read_line(inp: TextIO) -> str:
    """`inp.readline()` in a daemon thread of its own, without holding up shutdown.

    `asyncio.to_thread` would use the loop's executor, which `asyncio.run` waits for at exit:
    Ctrl-C at the prompt then did nothing until Enter. A daemon thread is left blocked instead;
    the process exits without it.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if done.done():  # cancelled meanwhile (Ctrl-C): nobody waits for the line
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(line or "")

    def read() -> None:
        try:
            line, error = inp.readline(), None
        except Exception as exc:  # handed to the awaiting coroutine, raised there
            line, error = None, exc
        # RuntimeError: the loop closed while we were blocked, so the line is not wanted.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=read, name="console-readline", daemon=True).start()
    return await done
