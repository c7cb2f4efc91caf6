"""A loopback fake of the Slack Web API (and of Socket Mode's websocket) for tests.

The Web API is a stdlib HTTP server in a thread on 127.0.0.1, port 0, in the style of
bolt-python's `tests/mock_web_api_server/`: the real `AsyncWebClient` talks to it through
`base_url` (`fake.base_url`). Every request is recorded with its decoded body (JSON, form or
query), so tests assert on what was sent. It keeps the messages the bot posted (chat.update
changes them) and can be told to fail:

    fake.fail("chat.postMessage", "not_in_channel")            # once, Slack's ok:false answer
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=0.1)
    fake.fail("conversations.open", "user_not_found", times=2)
    fake.latency["chat.postMessage"] = (0.1, 0.2)               # answer after 100–200 ms

Kill tests hook in with `on_call` (each call as it arrives, before its latency) and read
`delivered`: every message posted, in the order Slack accepted them, as posted (with buttons).

`SocketModeFake` is a websocket server (aiohttp, 127.0.0.1 port 0) that Slack's Socket Mode
client connects to after `apps.connections.open`; tests `send` envelopes and await the acks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

from tests.fakes.loopback import KeepAliveHandler, LoopbackServer

BOT_TOKEN = "xoxb-1111-2222-FakeTokenForTestsOnly"
APP_TOKEN = "xapp-1-A111-2222-FakeAppTokenForTests"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_USER = "UBOT0001"
TEAM = "T0TEST01"
_JSON_FIELDS = {"blocks", "view", "attachments"}


@dataclass(frozen=True)
class ApiCall:
    """One Web API request: method, decoded body, and the HTTP status answered."""

    method: str
    body: dict[str, Any]
    status: int


@dataclass
class _Failure:
    method: str
    error: str
    status: int
    retry_after: float | None
    times: int
    channel: str | None


def _decode(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
    body: dict[str, Any] = dict(parse_qsl(query))
    if raw:
        if "json" in content_type:
            body.update(json.loads(raw))
        else:
            body.update(dict(parse_qsl(raw.decode())))
    for name in _JSON_FIELDS & body.keys():
        if isinstance(body[name], str):
            body[name] = json.loads(body[name])
    return body


class FakeSlackAPI:
    """The fake Web API server; use as a context manager (starts and stops the thread)."""

    def __init__(self) -> None:
        self.token = BOT_TOKEN
        self.app_token = APP_TOKEN
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) → message
        self.profiles: dict[str, dict[str, Any]] = {}  # user id → users.info "user"
        self.socket_url: str | None = None  # what apps.connections.open answers
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: LoopbackServer | None = None
        # method → (shortest, longest) seconds to wait before answering; seeded for repeats.
        self.latency: dict[str, tuple[float, float]] = {}
        self._random = random.Random(1)
        # Called (in a server thread) with each call as it arrives, before its latency.
        self.on_call: Callable[[str, dict[str, Any]], None] | None = None
        self.delivered: list[tuple[str, str, dict[str, Any]]] = []  # (channel, ts, message)

    def __enter__(self) -> FakeSlackAPI:
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = LoopbackServer(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.stop()

    @property
    def base_url(self) -> str:
        """What `[slack] base_url` should be."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}/api/"

    # -- test controls ------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        retry_after: float | None = None,
        times: int = 1,
        channel: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (to `channel`, if given) with `error`."""
        with self._lock:
            self._failures.append(_Failure(method, error, status, retry_after, times, channel))

    def requests(self, method: str | None = None, **match: Any) -> list[ApiCall]:
        """Recorded calls (refused ones too), optionally of one method with matching fields."""
        with self._lock:
            calls = list(self.calls)
        return [
            c
            for c in calls
            if (method is None or c.method == method)
            and all(c.body.get(k) == v for k, v in match.items())
        ]

    def posted(self, channel: str) -> list[dict[str, Any]]:
        """The messages in `channel` as they are now (after updates), oldest first."""
        with self._lock:
            return [m for (ch, _ts), m in sorted(self.messages.items()) if ch == channel]

    def texts(self, channel: str) -> list[str]:
        """The texts of the messages in `channel`, oldest first."""
        return [m["text"] for m in self.posted(channel)]

    def sent_texts(self, channel: str) -> list[str]:
        """The texts of the messages posted to `channel`, as posted (not updated), in order."""
        with self._lock:
            return [m["text"] for ch, _ts, m in self.delivered if ch == channel]

    def last(self, channel: str) -> dict[str, Any]:
        """The newest message in `channel`."""
        return self.posted(channel)[-1]

    async def wait_for(
        self, method: str, count: int = 1, *, timeout: float = 5.0, **match: Any
    ) -> list[ApiCall]:
        """Wait until at least `count` calls of `method` matching `match` were made."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(method, **match)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {match}: {len(found)} of {count} calls")
            await asyncio.sleep(0.02)

    # -- the API ------------------------------------------------------------------------------

    def _take_failure(self, method: str, body: dict[str, Any]) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.channel in (None, body.get("channel")):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def handle(
        self, method: str, body: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one call: (status, JSON body, extra headers)."""
        if self.on_call is not None:
            self.on_call(method, body)
        span = self.latency.get(method)
        if span is not None:
            with self._lock:
                pause = self._random.uniform(*span)
            time.sleep(pause)
        with self._lock:
            expected = self.app_token if method == "apps.connections.open" else self.token
            if auth != f"Bearer {expected}":
                self.calls.append(ApiCall(method, body, 200))
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            failure = self._take_failure(method, body)
            if failure is not None:
                self.calls.append(ApiCall(method, body, failure.status))
                headers = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = f"{failure.retry_after:g}"
                return failure.status, {"ok": False, "error": failure.error}, headers
            self.calls.append(ApiCall(method, body, 200))
            return 200, self._answer(method, body), {}

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://cx-test.slack.com/",
                "team": "CX Test",
                "user": "cxbot",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": "BBOT0001",
            }
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            message = {"ts": ts, "text": body.get("text"), "blocks": body.get("blocks") or []}
            self.messages[(body["channel"], ts)] = message
            self.delivered.append((body["channel"], ts, message))
            return {"ok": True, "channel": body["channel"], "ts": ts, "message": message}
        if method == "chat.update":
            key = (body["channel"], body["ts"])
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            self.messages[key] = {
                "ts": body["ts"],
                "text": body.get("text"),
                "blocks": body.get("blocks") or [],
            }
            return {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(body["users"])[1:]}}
        if method == "views.open":
            return {"ok": True, "view": {"id": f"V{next(self._ts):06d}", **body["view"]}}
        if method == "users.info":
            user = body.get("user", "")
            default = {"id": user, "real_name": "", "locale": "en-US", "profile": {}}
            return {"ok": True, "user": self.profiles.get(user, default)}
        if method == "apps.connections.open":
            if self.socket_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        return {"ok": False, "error": "unknown_method"}


class _Handler(KeepAliveHandler):
    api: FakeSlackAPI

    def _dispatch(self) -> None:
        raw = self.read_body()
        path, _, query = self.path.partition("?")
        method = path.rstrip("/").split("/")[-1]
        body = _decode(self.headers.get("Content-Type", ""), raw, query)
        status, answer, headers = self.api.handle(
            method, body, self.headers.get("Authorization", "")
        )
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _dispatch
    do_POST = _dispatch


# -- what Slack sends ----------------------------------------------------------------------------


def sign(
    body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack puts on a request: `v0=` HMAC-SHA256 of `v0:<timestamp>:<body>`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def dm_event(user: str, text: str, *, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """An Events API body for a direct message from `user`."""
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0TEST01",
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        "event": {
            "type": "message",
            "channel": "D" + user[1:],
            "channel_type": "im",
            "user": user,
            "text": text,
            "ts": f"{time.time():.6f}",
            **extra,
        },
    }


def block_action(
    user: str, channel: str, message: dict[str, Any], action_id: str, *, value: str | None = None
) -> dict[str, Any]:
    """A `block_actions` payload: `user` pressed the button `action_id` on `message`."""
    button = next(
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id or (value is not None and e.get("value") == value)
    )
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "cx-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0TEST01",
        "token": "legacy",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}",
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "user": BOT_USER, **message},
        "actions": [
            {
                **button,
                "block_id": "b",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def button_press(user: str, channel: str, message: dict[str, Any], value: str) -> dict[str, Any]:
    """A survey button press (`value` is the button's payload, such as `a:nps:3`)."""
    return block_action(user, channel, message, "", value=value)


def view_submission(
    user: str,
    view: dict[str, Any],
    values: dict[str, dict[str, str]],
    *,
    selected: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A `view_submission` payload of `view` (as views.open got it): block → action → text
    typed (`values`), or → the value of the option chosen in a static_select (`selected`)."""
    state: dict[str, dict[str, Any]] = {
        block: {
            action: {"type": "plain_text_input", "value": text} for action, text in inputs.items()
        }
        for block, inputs in values.items()
    }
    for block, choices in (selected or {}).items():
        state.setdefault(block, {}).update(
            {
                action: {
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": value, "emoji": True},
                        "value": value,
                    },
                }
                for action, value in choices.items()
            }
        )
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "cx-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": "A0TEST01",
        "token": "legacy",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:8]}",
        "view": {
            "id": "V0TEST",
            "team_id": TEAM,
            **view,
            "state": {"values": state},
        },
    }


def form(payload: dict[str, Any]) -> bytes:
    """An interactivity request body: `payload=<json>`, form-encoded."""
    return urlencode({"payload": json.dumps(payload)}).encode()


# -- Socket Mode ----------------------------------------------------------------------------------


class SocketModeFake:
    """A websocket server speaking Slack's Socket Mode: hello, envelopes, acks."""

    def __init__(self) -> None:
        self.acks: dict[str, dict[str, Any]] = {}
        self._ws: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._acked = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> SocketModeFake:
        app = web.Application()
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/link"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._connected.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                async with self._acked:
                    self.acks[data.get("envelope_id", "")] = data
                    self._acked.notify_all()
        return ws

    async def send(
        self, kind: str, payload: dict[str, Any], *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Send one envelope (events_api / interactive) and return the client's ack."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        assert self._ws is not None
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._ws.send_str(json.dumps(envelope))
        async with self._acked:
            await asyncio.wait_for(self._acked.wait_for(lambda: envelope_id in self.acks), timeout)
        return self.acks[envelope_id]
