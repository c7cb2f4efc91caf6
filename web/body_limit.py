"""A size limit on every request body, enforced before any route reads it.

`BodyLimit` is plain ASGI middleware, so it covers every route of the app it wraps — webhooks,
the mounted REST API, `/healthz`, whatever is added later — without knowing them. A declared
`Content-Length` over the limit is refused at once (413) without reading a byte; a body sent
without one (chunked) is read up to the limit and refused as soon as it passes it. What is under
the limit is handed on whole, so routes read it as usual. A refusal is logged as one line with
the size, never the body: nothing has been authenticated yet.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: Slack and Telegram payloads are a few KB


def _covers(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


class BodyLimit:
    """ASGI middleware: 413 for a request body over the limit, 400 for a bad Content-Length.

    The limit is `max_bytes`, or that of the longest prefix in `limits` covering the path
    (`{"/api/v1": 4 MiB}`: a mounted app that takes bigger bodies).
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Longest prefix first, so the most specific limit wins.
        self._limits = sorted((limits or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        """The body limit of a request to `path`."""
        return next((n for prefix, n in self._limits if _covers(prefix, path)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the body's size, then call the wrapped app with the body replayed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "?"))
        limit = self.limit_for(path)
        declared = _content_length(scope)
        if declared == -1:
            log.warning("HTTP %s: refused a request with an invalid Content-Length (400)", path)
            await _answer(send, 400, "invalid Content-Length header")
            return
        if declared is not None and declared > limit:
            await _too_large(send, path, declared, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, path, size, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


async def _too_large(send: Send, path: str, size: int, limit: int) -> None:
    log.warning("HTTP %s: refused a %d-byte request body (413, limit %d bytes)", path, size, limit)
    await _answer(send, 413, f"request body over the limit of {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length; None when absent, -1 when it is not a plain number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.strip()
            # A length of more than 18 digits is absurd anyway; refusing it keeps int() cheap.
            if not text.isdigit() or len(text) > 18:
                return -1
            return int(text)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then waits on the real one (disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, error: str) -> None:
    payload = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
