"""python-telegram-bot over the aiohttp transport: requests, answers and errors as PTB's own."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData

from adapters.telegram_http import AiohttpRequest
from tests.fakes.telegram_api import FakeTelegramAPI


async def _bot(fake: FakeTelegramAPI) -> Bot:
    bot = Bot(fake.token, base_url=fake.base_url, request=AiohttpRequest())
    await bot.initialize()
    return bot


async def test_a_message_goes_out_with_its_keyboard_and_comes_back_parsed() -> None:
    with FakeTelegramAPI() as fake:
        fake.push(fake.send_text(42, "/start"))  # the fake knows chats that wrote first
        bot = await _bot(fake)
        try:
            sent = await bot.send_message(
                chat_id=42,
                text="How likely?",
                reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("9", callback_data="a:nps:9")]]
                ),
            )
        finally:
            await bot.shutdown()
        (call,) = fake.requests("sendMessage")
    assert (call.body["chat_id"], call.body["text"]) == (42, "How likely?")
    assert call.body["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a:nps:9"
    assert sent.message_id == fake.last_message_id(42)


async def test_platform_errors_are_ptbs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # as build_telegram_bot opts in
    with FakeTelegramAPI() as fake:
        fake.fail("sendMessage", status=429, retry_after=7)
        fake.fail("sendMessage", status=400)
        bot = await _bot(fake)
        try:
            with pytest.raises(RetryAfter) as limited:
                await bot.send_message(chat_id=1, text="x")
            with pytest.raises(BadRequest, match=r"(?i)chat not found"):
                await bot.send_message(chat_id=1, text="x")
        finally:
            await bot.shutdown()
    assert limited.value.retry_after.total_seconds() == 7  # type: ignore[union-attr]


async def test_nothing_listening_is_a_network_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    request = AiohttpRequest(connect_timeout=2.0)
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await request.post(f"http://127.0.0.1:{port}/botX/getMe")
    finally:
        await request.shutdown()


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A loopback server that accepts connections and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_no_answer_in_time_is_timed_out(silent_server: int) -> None:
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"http://127.0.0.1:{silent_server}/botX/getMe")
    finally:
        await request.shutdown()


async def test_uploads_go_as_multipart_with_their_file_part() -> None:
    seen: dict[str, str] = {}

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        for name, value in form.items():
            seen[name] = value.file.read().decode() if hasattr(value, "file") else str(value)
        message = {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/botX/sendDocument", upload)

    async def get_me(request: web.Request) -> web.Response:
        me = {"id": 1, "is_bot": True, "first_name": "cxbot", "username": "cxbot"}
        return web.json_response({"ok": True, "result": me})

    app.router.add_post("/botX/getMe", get_me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    bot = Bot("X", base_url=f"http://127.0.0.1:{port}/bot", request=AiohttpRequest())
    await bot.initialize()
    try:
        # PTB builds the multipart parts; the transport must send them as they are.
        sent = await bot.send_document(chat_id=5, document=b"hello file", filename="a.txt")
    finally:
        await bot.shutdown()
        await runner.cleanup()
    assert sent.message_id == 1
    assert (seen["chat_id"], seen["document"]) == ("5", "hello file")


def test_an_unopened_transport_says_so() -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        asyncio.run(request.do_request("http://127.0.0.1:1/", "POST", RequestData()))
