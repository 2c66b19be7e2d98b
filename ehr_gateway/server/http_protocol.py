"""uvicorn's HTTP protocol with deadlines for reading each request and for the client taking each
answer, bounds on a request's head and on pipelining, refusal of upgrades the gateway does not
take, and each response's head written with its body (server.head_with_body).

uvicorn reads a request's headers and body with no deadline of its own: a client that opens
connections and sends a request a byte at a time (slowloris) keeps each one open for as long as
it likes, and a few hundred of them take every file descriptor the process has. Here a request
must have arrived whole within ``request_read_timeout_s`` of its first byte (or of the
connection, for a client that sends nothing, or of any bytes sent between requests, such as a
lone empty line, which cancel uvicorn's keep-alive timer without beginning a request); otherwise
the connection is closed. The same deadline bounds the other direction: a client that stops
taking its answers (the write buffer stays over its high-water mark that long) is dropped.
Keep-alive idleness between requests is uvicorn's own ``timeout_keep_alive``; a WebSocket
upgrade ends the deadline, since the connection then belongs to the WebSocket protocol.

What uvicorn's httptools protocol leaves open, and what is done here instead:
- a request's head (request line and headers) is read whatever its size: past
  ``MAX_HEAD_BYTES`` it is answered 431;
- pipelined requests are queued without bound (each a request cycle of a few KB, from 19 bytes
  sent): past ``MAX_PIPELINED`` queued ones the connection is answered 400;
- a request with an ``Upgrade`` uvicorn does not take (anything but a WebSocket handshake) is
  answered as a plain request while the parser skips its body, which is then read as a request
  of its own (smuggling): it is answered 400;
- a WebSocket handshake pipelined behind requests not yet answered took the connection before
  their answers, which were then written into the WebSocket's stream: it is answered 400;
- a parse error is answered 400 at once, ahead of the answers to the requests before it, which
  are lost, and also when the malformed bytes are the body of a request already answered (two
  answers to one request);
- the trailer section of a chunked body (header fields after the last chunk) is read whatever
  its size and appended to the request's headers, after the application has read them: here
  its fields are dropped (RFC 9110 6.5.1: not merged into the header section) and its bytes
  count against ``MAX_HEAD_BYTES`` as a head's do;
- a chunk's size line is read whatever its size (chunk extensions, ``1;x=aaaa…``, are not
  limited by the parser, nor counted by the body limit, which counts chunks' data): its bytes
  count against ``MAX_CHUNK_LINE_BYTES`` as a head's do against ``MAX_HEAD_BYTES``, and past it
  the request is answered 400;
- a body that arrives after its request was answered (a 401 from its head) is read and dropped
  whatever its size, the application no longer reading it: past ``max_body_bytes`` of dropped
  bytes the connection is closed (nginx's lingering discard does likewise);
- a body that arrives after its request was answered cancels the keep-alive timer, and
  completing the request cancels the read deadline: the connection then had no timer at all.
  Here completing a request already answered arms the keep-alive timer again.
Each of those answers is written only after every request read before it has been answered
(pipelined answers come in request order, RFC 9112 9.3.2), and the connection is then closed:
nothing after the refused request is read. A request is answered once: when what is refused is
the body of a request whose answer has begun, nothing more is written and the connection is
closed (an answer still under way is cut short).

A head, trailer section or chunk size line is measured in the bytes received, not in what parsing
kept (the parser drops the whitespace before a header's value): a read larger than
``MAX_HEAD_BYTES`` is parsed a piece of at most that size at a time, so a section that begins and
ends in one piece is within the limit, and one that spans pieces counts every piece it is
unfinished at, and of the piece it ends in, the bytes up to its blank line (a chunk size line: up
to its line feed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ehr_gateway.server.head_with_body import HeadWithBody

# The most bytes a request's head may take. uvicorn's h11 protocol allows 16 KB and nginx 8 KB by
# default; the gateway's bearer tokens are JWTs of a few KB, and a browser's cookies add more, so
# this leaves them room while bounding what parsing a head costs (httptools gathers a header's
# value by concatenation: CPU grows faster than its size).
MAX_HEAD_BYTES = 64 * 1024
# The most requests queued behind the one being answered. Browsers do not pipeline, and the
# clients that do (HTTP libraries, benchmarks) send a few at a time; each queued request holds a
# request cycle of about 2 KB that uvicorn creates for every request in what it has read (up to
# 256 KB at once: some 13,000 requests of 19 bytes). 32 bounds that at under 100 KB a connection.
MAX_PIPELINED = 32
# The most bytes a chunk's size line may take (from the end of the head or of the previous chunk's
# data to its line feed): a size in hex and any chunk extensions, which no client of the gateway
# sends. A line is measured as a head is, in pieces of MAX_HEAD_BYTES, so that is the smallest
# bound that costs no per-byte Python work (Node.js refuses extensions past 16 KiB,
# CVE-2024-22019; what matters is that the read is bounded, not the exact figure).
MAX_CHUNK_LINE_BYTES = MAX_HEAD_BYTES


class _StopParsing(Exception):
    """Raised from a parser callback so that httptools stops at a refused request."""


class _Dropped(list[tuple[bytes, bytes]]):
    """Where uvicorn appends a request's trailer fields: nowhere. They come after the application
    has read the headers, and RFC 9110 6.5.1 forbids merging them into the header section."""

    def append(self, field: tuple[bytes, bytes]) -> None:
        pass


_DROPPED = _Dropped()
_CHUNK_LINE_TOO_LONG = "Chunk size line too long."
_BLANK_LINE = b"\r\n\r\n"  # the end of a head or trailer section (httptools requires CRLF)
_LINE_FEED = b"\n"  # the end of a chunk size line (which holds no other: llhttp refuses a bare one)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request does not arrive in time, or whose
    answers are not taken in time, and refuses what uvicorn would serve unsafely."""

    # This process's, from its configuration: set_limits.
    read_timeout_s: float = 10.0
    max_body_bytes: int = 256 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        # Bytes received since the current head, trailer section or chunk size line began, at
        # most (see _feed): 0 while it began in the piece being parsed, -1 outside one.
        self._section_bytes = -1
        # What ends it: _BLANK_LINE (a head or trailer section) or _LINE_FEED (a chunk size line).
        self._section_end = _BLANK_LINE
        # The last 3 bytes of the section so far: its blank line may begin in them.
        self._section_tail = b""
        # Body bytes dropped since the current request was answered.
        self._dropped_bytes = 0
        # The piece being parsed: data[_piece_start:_piece_start + _read_size].
        self._piece = b""
        self._piece_start = 0
        self._read_size = 0
        # Between a request's accepted head and the end of its body.
        self._reading_body = False
        # The answer refusing a request, once one is refused: written when every request before
        # it has been answered (b"": nothing is written). Nothing is read after it.
        self._refusal: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # a request was refused: what follows it is not read
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        # Bytes between requests (empty lines the parser skips) begin no request, but cancel
        # the keep-alive timer: they start the read deadline, unless an answer is still to come
        # (the keep-alive timer is armed after it).
        if self._read_deadline is None:
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)
        size = len(data)
        if size <= MAX_HEAD_BYTES:
            self._feed(data, 0, size, data)
        else:
            # A piece at a time: a section that begins and ends in a piece is within the limit
            # whatever the parser drops of it, and one spanning pieces is measured raw.
            view = memoryview(data)
            for start in range(0, size, MAX_HEAD_BYTES):
                end = min(start + MAX_HEAD_BYTES, size)
                if not self._feed(data, start, end, view[start:end]):
                    break
        self._piece = b""  # not held while the connection waits

    def _feed(self, data: bytes, start: int, end: int, piece: bytes | memoryview) -> bool:
        """Parse ``data[start:end]`` (``piece``); whether to go on parsing what follows it."""
        self._piece = data
        self._piece_start = start
        self._read_size = end - start
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            # Only a WebSocket handshake gets here: any other upgrade was refused at its headers.
            self.handle_websocket_upgrade()
            return False
        except httptools.HttpParserError:
            if self._refusal is None:
                self._refuse_invalid_request()
            return False
        if self._section_bytes < 0:
            return True
        # A section still unfinished after this piece.
        if self._section_bytes == 0:
            # It began in this piece. An unfinished section holds no blank line, so the bytes up
            # to the piece's last one came before it and are not counted; those between that and
            # the section (the end of an earlier request's body) are.
            marker = self._section_end
            blank = data.rfind(marker, start, end)
            self._section_bytes = end - (blank + len(marker) if blank >= 0 else start)
            self._section_tail = data[max(start, end - 3) : end]
        else:
            self._section_bytes += end - start
            self._section_tail = (self._section_tail + data[max(start, end - 3) : end])[-3:]
        if self._section_end is _LINE_FEED:
            if self._section_bytes <= MAX_CHUNK_LINE_BYTES:
                return True
            self._refuse_request_in_progress(400, _CHUNK_LINE_TOO_LONG)
            return False
        if self._section_bytes <= MAX_HEAD_BYTES:
            return True
        if self._reading_body:
            self._refuse_request_in_progress(431, "Request trailer fields too large.")
        else:
            self._refuse(431, "Request header fields too large.")
        return False

    def _section_over_limit(self, limit: int = MAX_HEAD_BYTES) -> bool:
        """Whether the head, trailer section or chunk size line ending in this piece took more
        than ``limit``, once what was counted before this piece and all of it are: only one that
        began in an earlier piece can have, and it ends at the first blank line (line feed),
        which may begin in the bytes before this piece."""
        before = self._section_bytes
        data, start, tail = self._piece, self._piece_start, self._section_tail
        marker = self._section_end
        straddling = (tail + data[start : start + 3]).find(marker)
        if straddling >= 0:
            taken = straddling + len(marker) - len(tail)
        else:
            blank = data.find(marker, start, start + self._read_size)
            taken = blank + len(marker) - start if blank >= 0 else self._read_size
        return before + taken > limit

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._section_bytes = 0
        self._section_end = _BLANK_LINE
        self._dropped_bytes = 0
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def on_headers_complete(self) -> None:
        if self._section_bytes + self._read_size > MAX_HEAD_BYTES and self._section_over_limit():
            self._refuse(431, "Request header fields too large.")
            raise _StopParsing
        self._section_bytes = -1
        # httptools skips the body of a request with an upgrade (it is the new protocol's): one
        # not taken would have its body read as the next request.
        if self.parser.should_upgrade() and not self._should_upgrade():
            self._refuse(400, "Upgrade not supported.")
            raise _StopParsing
        if len(self.pipeline) >= MAX_PIPELINED:
            self._refuse(400, "Too many pipelined requests.")
            raise _StopParsing
        previous = self.cycle
        super().on_headers_complete()
        self._reading_body = True
        # A chunked body begins with a chunk size line (any other body: on_body ends it at once,
        # and no body, on_message_complete).
        self._section_bytes = 0
        self._section_end = _LINE_FEED
        cycle = self.cycle
        if cycle is not None and cycle is not previous and self.scope["method"] != "HEAD":
            # Its application task is created but has not run yet: nothing was written. (uvicorn
            # writes nothing after the head of an answer to HEAD: there is nothing to hold it for.)
            cycle.transport = HeadWithBody(cycle.transport)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        self._section_bytes = -1  # a chunk with data: not the last, so no trailers follow it
        cycle = self.cycle
        if cycle.response_complete:
            # Answered before its body was read (a 401 from the head): nothing reads it now, and
            # the gate's body limit no longer applies. (uvicorn drops it as well.)
            self._dropped_bytes += len(body)
            if self._dropped_bytes > self.max_body_bytes:
                self._refuse_request_in_progress(413, "Request body too large.")
                raise _StopParsing
            return
        HttpToolsProtocol.on_body(self, body)

    def on_chunk_header(self) -> None:
        if (
            self._section_bytes + self._read_size > MAX_CHUNK_LINE_BYTES
            and self._section_over_limit(MAX_CHUNK_LINE_BYTES)
        ):
            self._refuse_request_in_progress(400, _CHUNK_LINE_TOO_LONG)
            raise _StopParsing
        # Until this chunk's data comes, the bytes read may be the trailer section that follows
        # the last chunk: they count against the head limit. uvicorn would append its fields to
        # the request's headers, after the application has read them.
        self._section_bytes = 0
        self._section_end = _BLANK_LINE
        self.headers = _DROPPED

    def on_chunk_complete(self) -> None:
        if self._section_bytes + self._read_size > MAX_HEAD_BYTES and self._section_over_limit():
            self._refuse_request_in_progress(431, "Request trailer fields too large.")
            raise _StopParsing
        # The next chunk's size line begins (after the last chunk, the request is complete).
        self._section_bytes = 0
        self._section_end = _LINE_FEED

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        self._reading_body = False
        self._section_bytes = -1
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:
            # Answered before its body was all read (a 401 from the head): the body's bytes
            # cancelled the keep-alive timer armed after the answer, and the read deadline ends
            # here. The connection is now idle between requests. (A WebSocket handshake after an
            # answered request gets here too: it is handed over or refused next.)
            if not self.pipeline and not self.parser.should_upgrade():
                self._unset_keepalive_if_required()
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
            return
        HttpToolsProtocol.on_message_complete(self)

    def on_response_complete(self) -> None:
        if self._refusal is None or self.pipeline:
            HttpToolsProtocol.on_response_complete(self)
            return
        # The last answer before the refused request: the refusal follows it.
        HttpToolsProtocol.on_response_complete(self)
        self._unset_keepalive_if_required()
        self._send_refusal()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_deadline()
        # A WebSocket handshake is a GET without a body (RFC 6455 4.1). One announcing a body
        # counts as complete at its headers, and once handed over it was held open forever,
        # with no deadline and no answer: refused here.
        if _announces_body(self.scope["headers"]):
            self._refuse(400, "A WebSocket handshake has no body.")
            return
        # Handing the connection over now would put the 101 before the answers still due, and
        # those answers into the WebSocket's stream.
        cycle = self.cycle
        if self.pipeline or (cycle is not None and not cycle.response_complete):
            self._refuse(400, "A WebSocket handshake must wait for the answers before it.")
            return
        self._unset_keepalive_if_required()
        self._cancel_write_deadline()
        super().handle_websocket_upgrade()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.read_timeout_s, self._not_reading)

    def resume_writing(self) -> None:
        self._cancel_write_deadline()
        super().resume_writing()

    def timeout_keep_alive_handler(self) -> None:
        # A close waits for unsent answers to be taken, which a client that stopped reading
        # never does.
        self._close_now()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._cancel_write_deadline()
        super().connection_lost(exc)

    def _refuse_invalid_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        if self._reading_body:
            self._refuse_request_in_progress(400, message)
        else:
            self._refuse(400, message)

    def _refuse_request_in_progress(self, status: int, message: str) -> None:
        """Refuse the request whose body is being read: ``status`` is its answer, unless its
        application has begun answering, and then nothing more is written (a second answer
        would be taken as the answer to the client's next request)."""
        cycle = self.cycle
        if self.pipeline and self.pipeline[0][0] is cycle:
            self.pipeline.popleft()  # queued: the refusal is its answer, after those before it
            self._refuse(status, message)
            return
        self._reading_body = False
        self._cancel_deadline()
        self.flow.pause_reading()
        self._refusal = b"" if cycle.response_started else self._answer(status, message)
        # Its application, which may be waiting for the rest of the body, reads a disconnect and
        # writes nothing more (an answer under way is cut short).
        cycle.disconnected = True
        cycle.message_event.set()
        self._send_refusal()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` and close, once every request read before this one is answered."""
        self._cancel_deadline()
        self.flow.pause_reading()
        self._refusal = self._answer(status, message)
        cycle = self.cycle
        if not self.pipeline and (cycle is None or cycle.response_complete):
            self._send_refusal()

    def _answer(self, status: int, message: str) -> bytes:
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        body = message.encode("ascii")
        content += [
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(content)

    def _send_refusal(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if self._refusal:
            transport.write(self._refusal)
        transport.close()
        if transport.get_write_buffer_size() and self._write_deadline is None:
            # The close waits for the answer to be taken: no longer than an answer may wait.
            self._write_deadline = self.loop.call_later(self.read_timeout_s, self._not_reading)

    def _start_deadline(self) -> None:
        self._cancel_deadline()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _cancel_write_deadline(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        self._close_now()

    def _not_reading(self) -> None:
        self._write_deadline = None
        self.transport.abort()

    def _close_now(self) -> None:
        transport = self.transport
        if transport.get_write_buffer_size():
            transport.abort()
        elif not transport.is_closing():
            transport.close()


def _announces_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def set_limits(read_timeout_s: float, max_body_bytes: int) -> type[DeadlineHttpToolsProtocol]:
    """Set this process's request read deadline (also how long an answer may wait for the client
    to take it) and body limit (how much of a body answered before it was read is dropped before
    the connection is closed); the protocol class to give uvicorn. Class attributes, not a
    subclass made per server: worker processes get the class by its import path, and each sets
    them from its own configuration (server.app)."""
    DeadlineHttpToolsProtocol.read_timeout_s = read_timeout_s
    DeadlineHttpToolsProtocol.max_body_bytes = max_body_bytes
    return DeadlineHttpToolsProtocol
