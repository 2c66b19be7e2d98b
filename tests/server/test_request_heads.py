"""A request's head (request line and headers) may take at most 64 KB: room for bearer tokens and
cookies of several KB each, while one of megabytes (read whole and parsed by uvicorn's httptools
protocol alone, in CPU growing faster than its size) is answered 431 and ends the connection. The
bytes sent are what count, whitespace the parser drops included, and the trailer section of a
chunked body (header fields after its last chunk, which uvicorn alone read whatever their size)
is held to the same limit, as is a chunk's size line (chunk extensions, `1;x=aaaa…`, which
neither the head limit nor the body limit counted: 300 MiB of one were read in 0.7 s). A real
gateway process over raw sockets."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import pytest

from tests.processes import GatewayProcess, started_gateway
from tests.raw_http import HEALTHZ, connect, read_until_closed, statuses

QUERY = b'{"query":"{__typename}"}'


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(tmp_path_factory.mktemp("heads"), database_url) as running:
        yield running


def healthz_with_padding(size: int) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding: %s\r\n\r\n" % (b"a" * size)


def answer(gateway: GatewayProcess, request: bytes) -> bytes | None:
    """The status line answered to ``request``; None if the gateway closed the connection before
    taking all of it."""
    with connect(gateway, timeout=10) as connection:
        try:
            connection.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            return None
        received = b""
        try:
            while b"\r\n" not in received and (chunk := connection.recv(1 << 16)):
                received += chunk
        except ConnectionResetError:
            pass
    return received.split(b"\r\n", 1)[0]


def test_a_head_of_100_kb_is_refused(gateway: GatewayProcess) -> None:
    assert answer(gateway, healthz_with_padding(100_000)) == (
        b"HTTP/1.1 431 Request Header Fields Too Large"
    )


def test_a_head_of_megabytes_is_refused(gateway: GatewayProcess) -> None:
    """Refused once 64 KB of it have been read (the client may then find its connection
    reset before it has sent the rest)."""
    assert answer(gateway, healthz_with_padding(4 << 20)) in (
        b"HTTP/1.1 431 Request Header Fields Too Large",
        None,
    )


def test_a_head_of_48_kb_is_served(gateway: GatewayProcess) -> None:
    assert answer(gateway, healthz_with_padding(48 * 1024)) == b"HTTP/1.1 200 OK"


def test_a_head_padded_with_whitespace_is_refused(gateway: GatewayProcess) -> None:
    """100 KB of spaces before a header's value, sent at once: the parser drops them, the
    bytes sent still count."""
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding:" + b" " * 100_000 + b"a\r\n\r\n"
    )
    with connect(gateway, timeout=10) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        received, _ = read_until_closed(connection, quiet=2)
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]


def chunked_graphql_post(token: str | None, trailers: bytes) -> bytes:
    """A POST of QUERY as one chunk, then ``trailers`` (header lines) after the last chunk."""
    authorization = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
    return (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        + authorization
        + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n" % (len(QUERY), QUERY)
        + trailers
        + b"\r\n"
    )


def test_a_chunked_request_with_a_trailer_is_served(gateway: GatewayProcess) -> None:
    request = chunked_graphql_post(gateway.token, b"X-Checksum: 5d41402a\r\n")
    with connect(gateway, timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while not received.endswith(b"}}"):
            received += connection.recv(1 << 16)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert json.loads(received.split(b"\r\n\r\n", 1)[1]) == {"data": {"__typename": "Query"}}


def test_trailers_past_the_head_limit_are_refused(gateway: GatewayProcess) -> None:
    """About 1 MB of trailer fields, and a request after them: the request is answered once
    (the 401 its head earns without a token, or the 431), the connection is closed, and the
    request after the trailers is not read."""
    trailers = (b"X-Trailer: " + b"a" * 1000 + b"\r\n") * 1000
    with connect(gateway, timeout=10) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(chunked_graphql_post(None, trailers) + HEALTHZ)
        received, closed = read_until_closed(connection, quiet=3)
    # The answer may be lost to the reset a close with unread bytes causes.
    assert statuses(received) in ([b"431"], [b"401"], []), received[:200]
    assert closed


# Many times the chunk size line limit (64 KiB), sent a mebibyte at a time.
_EXTENSION_MEBIBYTES = 16
_MEBIBYTE = b"a" * (1 << 20)


def _send(connection: socket.socket, *parts: bytes) -> bool:
    """Whether all of ``parts`` were sent before the gateway closed the connection."""
    try:
        for part in parts:
            connection.sendall(part)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def chunked_post_with_extension(token: str | None, extension: bytes) -> bytes:
    """The head of a chunked POST of QUERY and its chunk size line up to ``extension``; the chunk
    follows with CHUNK_AFTER_EXTENSION."""
    authorization = b"Authorization: Bearer %s\r\n" % token.encode() if token else b""
    return (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        + authorization
        + b"Transfer-Encoding: chunked\r\n\r\n%x;x=" % len(QUERY)
        + extension
    )


CHUNK_AFTER_EXTENSION = b"\r\n" + QUERY + b"\r\n0\r\n\r\n"


def test_a_chunk_with_a_short_extension_is_served(gateway: GatewayProcess) -> None:
    with connect(gateway, timeout=10) as connection:
        connection.sendall(
            chunked_post_with_extension(gateway.token, b"a" * 1000) + CHUNK_AFTER_EXTENSION
        )
        received = b""
        while not received.endswith(b"}}"):
            received += connection.recv(1 << 16)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert json.loads(received.split(b"\r\n\r\n", 1)[1]) == {"data": {"__typename": "Query"}}


def test_a_chunk_extension_of_megabytes_is_refused(gateway: GatewayProcess) -> None:
    """A chunked POST whose one chunk of 24 bytes carries a chunk extension (``;x=aaaa…``) of
    16 MiB: it is not read whole and served, but refused (400, or a reset that loses it)."""
    with connect(gateway, timeout=20) as connection:
        sent = _send(
            connection,
            chunked_post_with_extension(gateway.token, b""),
            *[_MEBIBYTE] * _EXTENSION_MEBIBYTES,
            CHUNK_AFTER_EXTENSION,
        )
        received, closed = read_until_closed(connection, quiet=5)

    assert not (sent and statuses(received) == [b"200"]), received[:200]
    assert statuses(received) in ([b"400"], []), received[:200]
    assert closed


def test_a_chunk_extension_after_the_answer_ends_the_connection_without_a_second_answer(
    gateway: GatewayProcess,
) -> None:
    """Without a token the POST is answered 401 from its head; its chunk size line of megabytes
    then closes the connection with nothing more written, and the request after it is not read."""
    with connect(gateway, timeout=20) as connection:
        connection.sendall(chunked_post_with_extension(None, b""))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(1 << 16)
        _send(connection, *[_MEBIBYTE] * _EXTENSION_MEBIBYTES, CHUNK_AFTER_EXTENSION + HEALTHZ)
        received, closed = read_until_closed(connection, quiet=5)

    assert statuses(answer + received) == [b"401"], (answer + received)[:300]
    assert closed
