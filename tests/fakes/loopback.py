"""A stdlib HTTP server on 127.0.0.1, port 0, in a background thread: the base of the API fakes."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a client opening more connections at once (cxbot's
    # delivery worker sends a pass's button answers and edits together over a pool of 8)
    # overflows it, and the kernel drops the extra SYNs, which the client resends after 1 s —
    # a second's stall that no real platform has.
    request_queue_size = 128

    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (kill tests) resets its connection: not a fake's error.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackServer:
    """Serves `handler` on a free loopback port until `stop()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port the operating system chose."""
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, quiet, answering in one write, as the SDK clients expect."""

    protocol_version = "HTTP/1.1"
    # Headers and body in one write, sent at once: otherwise Nagle's algorithm and delayed ACKs
    # add ~40 ms to every call on a kept-alive connection.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests assert on recorded calls, not on a request log."""

    def read_body(self) -> bytes:
        """The request body (empty when there is none)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""
