"""uvicorn's HTTP protocol with a deadline for reading each request, writing each response's head
with its body (server.head_with_body).

uvicorn reads a request's headers and body with no deadline of its own: a client that opens
connections and sends a request a byte at a time (slowloris) keeps each one open for as long as
it likes, and a few hundred of them take every file descriptor the process has. Here a request
must have arrived whole within ``request_read_timeout_s`` of its first byte (or of the
connection, for a client that sends nothing); otherwise the connection is closed. Keep-alive
idleness between requests is uvicorn's own ``timeout_keep_alive``; a WebSocket upgrade ends the
deadline, since the connection then belongs to the WebSocket protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ehr_gateway.server.head_with_body import HeadWithBody


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request does not arrive in time."""

    read_timeout_s: float = 10.0  # this process's, from its configuration: set_read_timeout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not previous and self.scope["method"] != "HEAD":
            # Its application task is created but has not run yet: nothing was written. (uvicorn
            # writes nothing after the head of an answer to HEAD: there is nothing to hold it for.)
            cycle.transport = HeadWithBody(cycle.transport)  # type: ignore[assignment]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_deadline()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_deadline()
        # A WebSocket handshake is a GET without a body (RFC 6455 4.1). One announcing a body
        # counts as complete at its headers, and once handed over it was held open forever,
        # with no deadline and no answer: refused here.
        if _announces_body(self.scope["headers"]):
            self.send_400_response("A WebSocket handshake has no body.")
            return
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._cancel_deadline()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def _announces_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def set_read_timeout(seconds: float) -> type[DeadlineHttpToolsProtocol]:
    """Set this process's request read deadline; the protocol class to give uvicorn. A class
    attribute, not a subclass made per server: worker processes get the class by its import
    path, and each sets the deadline from its own configuration (server.app)."""
    DeadlineHttpToolsProtocol.read_timeout_s = seconds
    return DeadlineHttpToolsProtocol
