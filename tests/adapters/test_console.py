"""The console channel: rendering, the line loop, and the in-memory harness."""

from __future__ import annotations

import asyncio
import contextlib
import io

from adapters.console import MemoryChannel, render, run_console
from bot.messages import Choice, ChoiceStyle, IncomingMessage, MessageKind, OutgoingMessage


def message(text: str, *choices: str, style: ChoiceStyle = ChoiceStyle.SCALE) -> OutgoingMessage:
    return OutgoingMessage(
        channel="console",
        user_id="u",
        text=text,
        choices=tuple(Choice(label=c, payload=f"a:q:{c}") for c in choices),
        choice_style=style,
    )


def test_scale_choices_render_on_one_line() -> None:
    assert render(message("Rate us", "1", "2", "3")) == "Rate us\n[1] [2] [3]"


def test_options_render_as_numbered_lines() -> None:
    text = render(message("Pick", "Price", "Quality", style=ChoiceStyle.OPTIONS))
    assert text == "Pick\n  1. Price\n  2. Quality"


def test_plain_text_renders_as_is() -> None:
    assert render(message("Thanks!")) == "Thanks!"


class Echo:
    """A handler that records what it got and answers with the text reversed."""

    def __init__(self) -> None:
        self.received: list[IncomingMessage] = []

    async def __call__(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        self.received.append(msg)
        return [message((msg.text or msg.payload or "")[::-1])]


async def test_pipe_mode_prints_only_bot_messages_and_stops_at_end_of_input() -> None:
    handler = Echo()
    out = io.StringIO()
    code = await run_console(
        handler, [message("Hello")], user_id="dana", stdin=io.StringIO("abc\n\nxyz"), stdout=out
    )
    assert code == 0
    assert out.getvalue() == "Hello\ncba\n\nzyx\n"
    assert [(m.channel, m.user_id, m.text) for m in handler.received] == [
        ("console", "dana", "abc"),
        ("console", "dana", ""),
        ("console", "dana", "xyz"),
    ]


async def test_memory_channel_push_press_pop() -> None:
    handler = Echo()
    channel = MemoryChannel(handler, user_id="u1", locale="es")
    await channel.push("hola")
    await channel.press("a:q:1")
    assert [m.text for m in channel.pop_all()] == ["aloh", "1:q:a"]
    assert handler.received[1].kind == MessageKind.BUTTON
    assert handler.received[0].locale == "es"
    channel.receive([message("unprompted")])
    assert channel.pop().text == "unprompted"


class _TerminalPipe(io.TextIOWrapper):
    """The read end of a pipe that says it is a terminal, so the prompt is shown."""

    def isatty(self) -> bool:
        return True


def test_ctrl_c_at_the_prompt_stops_without_waiting_for_enter() -> None:
    # asyncio.run cancels the main task on Ctrl-C, then waits for its executor's threads: a
    # readline there held the exit until Enter. Nothing is ever typed here.
    import os
    import threading

    read_fd, write_fd = os.pipe()
    stdin = _TerminalPipe(io.FileIO(read_fd, "r"))
    out = io.StringIO()

    async def echo(msg: IncomingMessage) -> list[OutgoingMessage]:
        return [message(msg.text or "")]

    async def press_ctrl_c() -> None:
        console = asyncio.create_task(run_console(echo, [], user_id="u", stdin=stdin, stdout=out))
        while "> " not in out.getvalue():
            await asyncio.sleep(0)
        console.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await console

    runner = threading.Thread(target=asyncio.run, args=(press_ctrl_c(),), daemon=True)
    runner.start()
    runner.join(timeout=30)  # a guard against hanging the suite, not a timing assertion
    stuck = runner.is_alive()
    os.write(write_fd, b"\n")  # releases the reader thread (and, if broken, the runner)
    runner.join()
    os.close(write_fd)
    assert not stuck, "asyncio.run waited for the blocked readline"
