"""A response's head and the first part of its body, written to the connection at once.

uvicorn writes a response's status line and headers as soon as the application starts the
response, and its body when the application sends it: two writes, so two system calls and two
TCP segments for an answer that the application hands over in one go. Over loopback, where the
kernel does the receiver's work inside the sender's call, the first of them cost about a fifth
of a cached read's CPU (py-spy on a served gateway under wrk). Here the head of a response that
announces its length is held until the first part of its body and written with it; everything
else (a streamed answer in chunks, whose head the client needs before any part arrives; an
interim ``100 Continue``; the answer to a HEAD request, which has no body to wait for) is written
as uvicorn writes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

# How uvicorn writes a header line (names in lower case) that announces the body's length.
_LENGTH_HEADER = b"\r\ncontent-length: "


class HeadWithBody:
    """The transport one request's response is written to: a head announcing a length is held
    back until the next write, and goes out with it in one."""

    __slots__ = ("_head", "_passing", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._passing = False

    def write(self, data: bytes) -> None:
        if self._passing:
            self._transport.write(data)
        elif self._head is not None:
            head, self._head = self._head, None
            self._passing = True
            self._transport.write(head + data)
        elif (
            data.startswith(b"HTTP/1.")
            and not data.startswith(b"HTTP/1.1 1")
            and (_LENGTH_HEADER in data)
        ):
            self._head = data  # the body follows: a response with a length is never streamed
        else:
            self._passing = True
            self._transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    def close(self) -> None:
        # A head still held has no body after it (the application failed after starting the
        # response): closing the connection without it is what the client gets either way.
        self._head = None
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
