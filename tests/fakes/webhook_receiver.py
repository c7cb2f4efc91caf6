"""A loopback webhook receiver for tests: records every request, answers as it is told.

A stdlib HTTP server on 127.0.0.1, port 0, in a thread (`tests.fakes.loopback`). Each request
is recorded (path, headers, raw body) before it is answered; answers are scripted in order and
default to 200:

    receiver = WebhookReceiver()
    receiver.answer(500)                       # the next request gets 500, the one after 200
    receiver.answer(410, times=2)
    receiver.answer(429, headers={"Retry-After": "7"})
    receiver.answer(200, delay=2.0)            # a slow answer: after 2 s
    receiver.answer(503, path="/hooks/desk")   # only requests to that path
    url = receiver.url("/hooks/crm")

`verified(secret)` checks every recorded request with the reference verifier of the Standard
Webhooks project (`standardwebhooks.Webhook(secret).verify`) and returns the parsed bodies.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook

from tests.fakes.loopback import KeepAliveHandler, LoopbackServer


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and the status it was (to be) answered with."""

    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)

    def verify(self, secret: str) -> Any:
        """The body, parsed, after the reference verifier accepted the signature."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class _Answer:
    status: int
    times: int
    delay: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    path: str | None = None


class WebhookReceiver:
    """Receives webhook POSTs on a free loopback port until `stop()`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: list[_Answer] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = LoopbackServer(self._handler())

    def url(self, path: str = "/hooks") -> str:
        """The URL of `path` on this receiver."""
        return f"http://127.0.0.1:{self._server.port}{path}"

    def answer(
        self,
        status: int,
        *,
        times: int = 1,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        path: str | None = None,
    ) -> None:
        """Answer the next `times` requests (to `path`, if given; after the answers already
        scripted for them) with `status`."""
        with self._lock:
            self._answers.append(_Answer(status, times, delay, dict(headers or {}), body, path))

    def bodies(self) -> list[Any]:
        """Every request's parsed body, in arrival order."""
        return [r.json for r in self.received]

    def verified(self, secret: str) -> list[Any]:
        """Every request's body, each checked by the reference verifier first."""
        return [r.verify(secret) for r in self.received]

    def stop(self) -> None:
        """Stop serving (cutting slow answers short)."""
        self._stopping.set()
        self._server.stop()

    def _next(self, path: str) -> _Answer:
        with self._lock:
            for answer in self._answers:
                if answer.path is None or answer.path == path:
                    answer.times -= 1
                    if answer.times <= 0:
                        self._answers.remove(answer)
                    return answer
            return _Answer(200, 1, 0.0)

    def _handler(self) -> type[KeepAliveHandler]:
        receiver = self

        class Handler(KeepAliveHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                answer = receiver._next(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, answer.status))
                if answer.delay and receiver._stopping.wait(answer.delay):
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        return Handler
