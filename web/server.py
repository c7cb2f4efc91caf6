"""The one HTTP server (FastAPI on uvicorn) inside `cxbot serve`'s asyncio loop.

`build_web_app` mounts what the caller hands it — `/healthz` with its checks, webhook routes of
the configured channels — so nothing is global and tests build as many apps as they like.
`WebServer` binds the socket itself (a busy port is a clear error, port 0 picks a free one) and
runs uvicorn as a task of the running loop; `cxbot serve` owns the signals, not uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from web.body_limit import MAX_BODY_BYTES, BodyLimit
from web.errors import WebServerError
from web.metrics import CountsReader, install_metrics

log = logging.getLogger(__name__)

TELEGRAM_WEBHOOK_PATH = "/telegram/webhook"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_WEBHOOK_BODY = 1 << 20  # Telegram updates are a few KB; refuse anything absurd

Endpoint = Callable[[Request], Awaitable[Response]]
HealthCheck = Callable[[], Awaitable[None]]  # raises when what it checks is unhealthy


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint to mount: path, handler and HTTP methods."""

    path: str
    endpoint: Endpoint
    methods: tuple[str, ...] = ("POST",)


@dataclass(frozen=True, slots=True)
class Mount:
    """A whole application served under a path (the REST API under `/api/v1`)."""

    path: str
    app: FastAPI
    max_body_bytes: int | None = None  # its own body limit, else the server's


def build_web_app(
    *,
    routes: Sequence[Route] = (),
    health_checks: Mapping[str, HealthCheck] | None = None,
    info: Mapping[str, Any] | None = None,
    mounts: Sequence[Mount] = (),
    metrics: CountsReader | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with `/healthz`, the given routes and the mounted applications.

    `/healthz` answers 200 `{"status": "ok", "checks": {name: "ok"}, **info}` when every check
    passes, else 503 with `"status": "unhealthy"` and the failing checks' errors. With
    `metrics` (a reader of the stored counts), `GET /metrics` serves Prometheus metrics.
    Every route refuses a body over `max_body_bytes` (a mount: over its own limit) with 413.
    """
    app = FastAPI(title="cxbot", docs_url=None, redoc_url=None, openapi_url=None)
    checks = dict(health_checks or {})
    extra = dict(info or {})

    async def healthz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
            except Exception as exc:  # reported in the answer: that is the point of the check
                results[name] = f"failed: {exc}"
            else:
                results[name] = "ok"
        healthy = all(v == "ok" for v in results.values())
        body = {"status": "ok" if healthy else "unhealthy", "checks": results, **extra}
        return JSONResponse(body, status_code=200 if healthy else 503)

    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    for route in routes:
        app.add_api_route(
            route.path, route.endpoint, methods=list(route.methods), include_in_schema=False
        )
    for mount in mounts:
        app.mount(mount.path, mount.app)
    limits = {m.path: m.max_body_bytes for m in mounts if m.max_body_bytes is not None}
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, limits=limits)
    if metrics is not None:
        # Last, so outermost: the response counts include the body limit's 413s.
        install_metrics(app, read_counts=metrics)
    return app


def telegram_webhook_route(
    *,
    secret_token: str,
    feed: Callable[[dict[str, Any]], Awaitable[None]],
    path: str = TELEGRAM_WEBHOOK_PATH,
) -> Route:
    """`POST /telegram/webhook`: check Telegram's secret header, then `feed` the update.

    401 without the header, 403 with a wrong one (compared in constant time), 400 and a warning
    for a body that is not a JSON object or that `feed` rejects with ValueError, 200 once
    handled. Any other error from `feed` propagates (500), so Telegram delivers it again.
    """
    expected = secret_token.encode()

    async def webhook(request: Request) -> Response:
        given = request.headers.get(TELEGRAM_SECRET_HEADER)
        if given is None:
            return JSONResponse({"error": "missing secret token"}, status_code=401)
        if not hmac.compare_digest(given.encode(), expected):
            return JSONResponse({"error": "wrong secret token"}, status_code=403)
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            data = json.loads(body)
        except RecursionError:  # nested deeper than the parser goes: no update is like that
            return _bad_request("body is nested too deeply")
        except ValueError:
            return _bad_request("body is not JSON")
        if not isinstance(data, dict):
            return _bad_request("body is not a JSON object")
        try:
            await feed(data)
        except ValueError as exc:
            return _bad_request(str(exc))
        return JSONResponse({"ok": True})

    return Route(path=path, endpoint=webhook)


def _bad_request(reason: str) -> Response:
    # 400, not 500: Telegram would redeliver a malformed update for ever. One line in the log,
    # since the operator cannot see the refused update anywhere else.
    log.warning("Telegram webhook: refused a malformed update (400): %s", reason)
    return JSONResponse({"error": reason}, status_code=400)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `cxbot serve` decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise WebServerError(
            f"cannot listen on {host}:{port} ([server] host/port): {exc.strerror or exc}"
        ) from None


class WebServer:
    """uvicorn serving `app` on host:port as a task of the running event loop."""

    def __init__(self, app: FastAPI, *, host: str, port: int) -> None:
        self._app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The server's base URL (with the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, *, timeout: float = 10.0) -> None:
        """Bind, start serving, and return once requests are accepted."""
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web-server")
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what went wrong
                raise WebServerError(f"the web server on {self.url} stopped during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise WebServerError(f"the web server on {self.url} did not start in {timeout:g} s")
            await asyncio.sleep(0.01)
        log.info("serving HTTP on %s", self.url)

    async def wait(self) -> None:
        """Return when the server stops by itself (it should not: that is an error)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop accepting connections and let requests under way finish."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None
