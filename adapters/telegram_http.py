"""python-telegram-bot's HTTP transport on aiohttp instead of httpx.

PTB lets a bot bring its own `BaseRequest`; PTB still builds every request and parses every
answer, so the Bot API semantics (errors, retry_after, timeouts) are PTB's. Why swap the
transport: on the bench's workload httpx + httpcore + h11 (pure Python, with a pool scanned on
every request) cost more CPU per Bot API call than the whole rest of a durable turn, while
aiohttp — already a dependency for Slack — parses HTTP in C. Timeouts map one to one; transport
errors become PTB's `TimedOut` / `NetworkError`, exactly as with `HTTPXRequest`.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

DEFAULT_TIMEOUT = 5.0


def _chosen(value: object, default: float | None) -> float | None:
    # PTB passes BaseRequest.DEFAULT_NONE for "not given": fall back to this transport's default.
    if isinstance(value, type(BaseRequest.DEFAULT_NONE)):
        return default
    return value  # type: ignore[return-value]


class AiohttpRequest(BaseRequest):
    """A PTB request transport over one `aiohttp.ClientSession` with a bounded connection pool."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 8,
        read_timeout: float | None = DEFAULT_TIMEOUT,
        write_timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_TIMEOUT,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds the long-poll time to it for getUpdates)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (inside the running loop, as aiohttp requires)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; answer PTB with (status, body)."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = _chosen(read_timeout, self._read_timeout)
        connect = _chosen(connect_timeout, self._connect_timeout)
        pool = _chosen(pool_timeout, self._pool_timeout)
        # aiohttp has no separate write timeout; the read timeout covers waiting for the answer.
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None and pool is None else (connect or 0) + (pool or 0),
            sock_connect=connect,
            sock_read=read,
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            data = (
                _form(request_data) if request_data.contains_files else request_data.json_parameters
            )
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


def _form(request_data: RequestData) -> aiohttp.FormData:
    """Multipart form for uploads: the plain parameters plus each file part PTB prepared."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, part in request_data.multipart_data.items():
        filename, content, mimetype = part
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form


async def post_json(
    bot: Bot, endpoint: str, data: dict[str, Any], *, read_timeout: float | None = None
) -> Any:
    """Call the Bot API method `endpoint` through `bot`; answer with the API's JSON `result`.

    Everything but the answer's parsing stays python-telegram-bot's: it encodes the parameters
    (keyboards included), sends through the bot's request, and raises its own errors
    (RetryAfter, Forbidden, BadRequest...). What is skipped is turning the answer into PTB
    objects (a whole `Message` for each send, an `Update` tree for each polled update), which
    cost more CPU than the rest of a durable turn while cxbot reads one field of a sent message
    and stores updates as JSON. `Bot._post` is the method all of PTB's endpoint methods call,
    the one PTB's own `ExtBot` builds on.
    """
    if read_timeout is None:
        return await bot._post(endpoint, data)
    return await bot._post(endpoint, data, read_timeout=read_timeout)
