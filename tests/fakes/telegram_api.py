"""A loopback fake of the Telegram Bot API for tests and benchmarks.

A stdlib HTTP server in a thread on 127.0.0.1, port 0. The real python-telegram-bot client talks
to it through `base_url` (`fake.base_url`). It records every request (method and decoded body),
keeps the messages the bot sent (so button presses carry the real keyboard, and edits change
it), serves long polling from a queue of updates the test pushes, and can be told to fail:

    fake.fail("sendMessage", status=429, retry_after=0.1)     # flood control, once
    fake.fail("sendMessage", status=500, times=2)              # server errors
    fake.fail("sendMessage", raw=b"<html>oops")                # a 200 that is not JSON
    fake.block(42)                                             # 403 blocked, from now on
    fake.latency["sendMessage"] = (0.1, 0.2)                   # answer after 100–200 ms

Kill tests hook in with `on_call` (each call as it arrives, before its latency) and `on_batch`
(each non-empty getUpdates batch, just before it is answered), and read `confirmed` (updates
a getUpdates offset confirmed: Telegram forgets those) and `delivered` (every message the bot
sent, with the id the fake gave it).

Like Telegram, it refuses to message a chat that never wrote to the bot (400 chat not found);
pushing an update from a chat, or `fake.known_chats.add(chat_id)`, makes it known.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.loopback import KeepAliveHandler, LoopbackServer

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghij"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "CX Bot",
    "username": "cx_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}

# Form fields python-telegram-bot sends JSON-encoded, and those that are numbers or booleans.
_JSON_FIELDS = {"reply_markup", "allowed_updates", "link_preview_options", "reply_parameters"}
_INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time"}
_BOOL_FIELDS = {"show_alert", "drop_pending_updates", "disable_notification"}


@dataclass(frozen=True)
class ApiCall:
    """One request the bot made: method, decoded body, when, and the HTTP status answered."""

    method: str
    body: dict[str, Any]
    at: float
    status: int


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    retry_after: float | None
    raw: bytes | None
    times: int
    chat_id: int | None


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    replays: list[dict[str, Any]] = field(default_factory=list)  # served whatever the offset
    pushed_at: dict[int, float] = field(default_factory=dict)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    answered_queries: set[str] = field(default_factory=set)
    pending_queries: set[str] = field(default_factory=set)
    webhook: dict[str, Any] = field(default_factory=dict)


def _decode_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        data = json.loads(raw or b"{}")
        return data if isinstance(data, dict) else {}
    fields = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    body: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _JSON_FIELDS:
            body[key] = json.loads(value)
        elif key in _INT_FIELDS:
            body[key] = int(value)
        elif key in _BOOL_FIELDS:
            body[key] = value in ("true", "True", "1")
        else:
            body[key] = value
    return body


class FakeTelegramAPI:
    """The fake Bot API server; use as a context manager (starts and stops the thread)."""

    def __init__(self, token: str = TOKEN, *, max_poll_wait: float = 0.5) -> None:
        self.token = token
        self.max_poll_wait = max_poll_wait
        self.calls: list[ApiCall] = []
        # Called (in a server thread) with each recorded call; benchmarks wait on these.
        self.listeners: list[Callable[[ApiCall], None]] = []
        self.known_chats: set[int] = set()
        self.blocked: set[int] = set()
        self._failures: list[_Failure] = []
        self._state = _State()
        self._cond = threading.Condition()
        self._update_ids = itertools.count(1000)
        self._query_ids = itertools.count(1)
        self._customer_message_ids = itertools.count(1)
        self._closing = False
        self._server: LoopbackServer | None = None
        # method → (shortest, longest) seconds to wait before answering; seeded for repeats.
        self.latency: dict[str, tuple[float, float]] = {}
        self._random = random.Random(1)
        self.on_call: Callable[[str, dict[str, Any]], None] | None = None
        self.on_batch: Callable[[list[dict[str, Any]]], None] | None = None
        self.confirmed: list[dict[str, Any]] = []
        self.delivered: list[tuple[int, int, dict[str, Any]]] = []  # (chat, message id, body)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeTelegramAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on 127.0.0.1 at a free port, serving from a background thread."""
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = LoopbackServer(Handler)

    def stop(self) -> None:
        """Stop serving and wake any long poll."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.stop()

    @property
    def port(self) -> int:
        """The port the fake listens on."""
        assert self._server is not None
        return self._server.port

    @property
    def base_url(self) -> str:
        """What `[telegram] base_url` should be (python-telegram-bot appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # -- test controls ---------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        description: str | None = None,
        retry_after: float | None = None,
        raw: bytes | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (to `chat_id`, if given) with a failure."""
        if description is None:
            description = {
                429: "Too Many Requests: retry after 1",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: chat not found",
            }.get(status, "Internal Server Error")
        with self._cond:
            self._failures.append(
                _Failure(method, status, description, retry_after, raw, times, chat_id)
            )

    def block(self, chat_id: int) -> None:
        """From now on, the customer has blocked the bot: 403 for every message to them."""
        with self._cond:
            self.blocked.add(chat_id)

    def push(self, *updates: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue updates (update ids assigned here) atomically; returns them with their ids."""
        now = time.perf_counter()
        stamped = []
        with self._cond:
            for update in updates:
                full = {"update_id": next(self._update_ids), **update}
                self._state.updates.append(full)
                self._state.pushed_at[full["update_id"]] = now
                self.known_chats.update(_chats_of(full))
                stamped.append(full)
            self._cond.notify_all()
        return stamped

    def redeliver(self, update: dict[str, Any]) -> None:
        """Queue an update again with its old id, as Telegram does after an unconfirmed fetch."""
        with self._cond:
            self._state.replays.append(dict(update))
            self._cond.notify_all()

    def stamp(self, update: dict[str, Any]) -> dict[str, Any]:
        """An update with a fresh update id, not queued (for webhook posts)."""
        with self._cond:
            full = {"update_id": next(self._update_ids), **update}
            self.known_chats.update(_chats_of(full))
        return full

    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        with self._cond:
            return len(self._state.updates)

    # -- update builders -------------------------------------------------------------------------

    @staticmethod
    def user(
        chat_id: int, first_name: str = "Ann", language_code: str | None = "en"
    ) -> dict[str, Any]:
        """The `from` of a customer whose private chat id is `chat_id`."""
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        chat_type: str = "private",
        first_name: str = "Ann",
        language_code: str | None = "en",
        edited: bool = False,
        **content: Any,
    ) -> dict[str, Any]:
        """A message update (not queued): text, or other content such as `photo=[...]`."""
        sender = self.user(chat_id if chat_type == "private" else 777, first_name, language_code)
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = "Support group"
        msg: dict[str, Any] = {
            "message_id": next(self._customer_message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
            **content,
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                length = len(text.split()[0])
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        if edited:
            msg["edit_date"] = int(time.time())
        return {"edited_message" if edited else "message": msg}

    def send_text(self, chat_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        """Queue a customer's text message."""
        return self.push(self.message(chat_id, text, **kwargs))[0]

    def press_update(
        self, chat_id: int, message_id: int, data: str, *, language_code: str | None = "en"
    ) -> dict[str, Any]:
        """A button press on a message the bot sent (not queued), with that message's keyboard."""
        with self._cond:
            message = dict(self._state.messages[(chat_id, message_id)])
            query_id = f"q{next(self._query_ids)}"
            self._state.pending_queries.add(query_id)
        chat_type = message["chat"]["type"]
        return {
            "callback_query": {
                "id": query_id,
                "from": self.user(chat_id if chat_type == "private" else 777, "Ann", language_code),
                "chat_instance": f"ci{chat_id}",
                "message": message,
                "data": data,
            }
        }

    def press(self, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        """Queue a button press on a message the bot sent."""
        return self.push(self.press_update(chat_id, message_id, data))[0]

    # -- what the bot did ------------------------------------------------------------------------

    def requests(self, method: str | None = None, *, chat_id: int | None = None) -> list[ApiCall]:
        """Recorded calls (all, or of one method / to one chat), oldest first."""
        with self._cond:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and (chat_id is None or c.body.get("chat_id") == chat_id)
        ]

    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        """Bodies of the messages delivered to a chat (successful sendMessage calls)."""
        return [c.body for c in self.requests("sendMessage", chat_id=chat_id) if c.status == 200]

    def texts(self, chat_id: int) -> list[str]:
        """Texts of the messages delivered to a chat."""
        return [b["text"] for b in self.sent(chat_id)]

    def message_state(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A bot message as the customer now sees it (after edits)."""
        with self._cond:
            return dict(self._state.messages[(chat_id, message_id)])

    def last_message_id(self, chat_id: int) -> int:
        """The id of the newest message the bot sent to a chat."""
        with self._cond:
            return self._state.next_message_id[chat_id] - 1

    @property
    def webhook(self) -> dict[str, Any]:
        """The webhook settings last given with setWebhook (empty after deleteWebhook)."""
        with self._cond:
            return dict(self._state.webhook)

    def pushed_at(self, update_id: int) -> float:
        """When an update was queued (time.perf_counter)."""
        with self._cond:
            return self._state.pushed_at[update_id]

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Poll `predicate` (every 10 ms) until true; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.01)

    async def wait_texts(self, chat_id: int, count: int, *, timeout: float = 5.0) -> list[str]:
        """Wait until at least `count` messages were delivered to a chat; their texts."""
        await self.wait_for(
            lambda: len(self.sent(chat_id)) >= count,
            timeout=timeout,
            what=f"{count} message(s) to chat {chat_id} (have {self.texts(chat_id)})",
        )
        return self.texts(chat_id)

    # -- serving ---------------------------------------------------------------------------------

    def _take_failure(self, method: str, body: dict[str, Any]) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and (
                failure.chat_id is None or failure.chat_id == body.get("chat_id")
            ):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def handle(self, token: str, method: str, body: dict[str, Any]) -> tuple[int, bytes]:
        """Answer one API call: (HTTP status, body)."""
        if token != self.token:
            return _error(401, "Unauthorized")
        if self.on_call is not None:
            self.on_call(method, body)
        span = self.latency.get(method)
        if span is not None:
            with self._cond:
                pause = self._random.uniform(*span)
            time.sleep(pause)
        with self._cond:
            failure = self._take_failure(method, body)
        if failure is not None:
            status, payload = _failure_response(failure)
        elif method == "getUpdates":
            status, payload = 200, _ok(self._get_updates(body))
        else:
            with self._cond:
                status, payload = self._answer(method, body)
        call = ApiCall(method, body, time.perf_counter(), status)
        with self._cond:
            self.calls.append(call)
        for listener in self.listeners:
            listener(call)
        return status, payload

    def _get_updates(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        offset = body.get("offset")
        limit = body.get("limit", 100)
        wait = min(float(body.get("timeout", 0)), self.max_poll_wait)
        deadline = time.monotonic() + wait
        with self._cond:
            if offset is not None:  # confirms everything before it
                self.confirmed.extend(u for u in self._state.updates if u["update_id"] < offset)
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
            while not self._state.updates and not self._state.replays and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            replays, self._state.replays = self._state.replays, []
            batch = replays + list(self._state.updates[:limit])
        if batch and self.on_batch is not None:
            self.on_batch(batch)
        return batch

    def _answer(self, method: str, body: dict[str, Any]) -> tuple[int, bytes]:
        state = self._state
        if method == "getMe":
            return 200, _ok(BOT_USER)
        if method in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
            chat_id = int(body["chat_id"])
            if chat_id in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if chat_id not in self.known_chats:
                return _error(400, "Bad Request: chat not found")
        if method == "sendMessage":
            message_id = state.next_message_id.get(chat_id, 1)
            state.next_message_id[chat_id] = message_id + 1
            chat_type = "private" if chat_id > 0 else "supergroup"
            message: dict[str, Any] = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": chat_type},
                "from": BOT_USER,
                "text": body["text"],
            }
            if body.get("reply_markup"):
                message["reply_markup"] = body["reply_markup"]
            state.messages[(chat_id, message_id)] = message
            self.delivered.append((chat_id, message_id, dict(body)))
            return 200, _ok(message)
        if method in ("editMessageText", "editMessageReplyMarkup"):
            key = (chat_id, int(body["message_id"]))
            if key not in state.messages:
                return _error(400, "Bad Request: message to edit not found")
            current = state.messages[key]
            updated = dict(current)
            if method == "editMessageText":
                updated["text"] = body["text"]
            updated.pop("reply_markup", None)
            if body.get("reply_markup"):
                updated["reply_markup"] = body["reply_markup"]
            if updated == current:
                return _error(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            state.messages[key] = updated
            return 200, _ok(updated)
        if method == "answerCallbackQuery":
            query_id = str(body["callback_query_id"])
            if query_id in state.answered_queries or query_id not in state.pending_queries:
                return _error(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is "
                    "invalid",
                )
            state.answered_queries.add(query_id)
            return 200, _ok(True)
        if method == "setWebhook":
            state.webhook = dict(body)
            if body.get("drop_pending_updates"):
                state.updates.clear()
            return 200, _ok(True)
        if method == "deleteWebhook":
            state.webhook = {}
            if body.get("drop_pending_updates"):
                state.updates.clear()
            return 200, _ok(True)
        if method == "getWebhookInfo":
            return 200, _ok({"url": state.webhook.get("url", ""), "pending_update_count": 0})
        return _error(404, "Not Found: method not found")


def _chats_of(update: dict[str, Any]) -> Iterator[int]:
    for key in ("message", "edited_message"):
        if key in update:
            yield int(update[key]["chat"]["id"])
    if "callback_query" in update:
        yield int(update["callback_query"]["message"]["chat"]["id"])


def _ok(result: Any) -> bytes:
    return json.dumps({"ok": True, "result": result}).encode()


def _error(status: int, description: str, **parameters: Any) -> tuple[int, bytes]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, json.dumps(body).encode()


def _failure_response(failure: _Failure) -> tuple[int, bytes]:
    if failure.raw is not None:
        return failure.status, failure.raw
    if failure.retry_after is not None:
        return _error(failure.status, failure.description, retry_after=failure.retry_after)
    return _error(failure.status, failure.description)


class _Handler(KeepAliveHandler):
    """The Bot API's routes: /bot<token>/<method>."""

    api: FakeTelegramAPI

    def _dispatch(self) -> None:
        raw = self.read_body()
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            status, payload = _error(404, "Not Found")
        else:
            try:
                body = _decode_body(self.headers.get("Content-Type", ""), raw)
            except ValueError:
                status, payload = _error(400, "Bad Request: cannot parse the request body")
            else:
                status, payload = self.api.handle(parts[0][3:], parts[1], body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a cancelled long poll)

    do_GET = _dispatch
    do_POST = _dispatch
