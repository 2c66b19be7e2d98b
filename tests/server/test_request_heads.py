"""A request's head (request line and headers) may take at most 64 KB: room for bearer tokens and
cookies of several KB each, while one of megabytes (read whole and parsed by uvicorn's httptools
protocol alone, in CPU growing faster than its size) is answered 431 and ends the connection. A
real gateway process over raw sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import GatewayProcess, started_gateway
from tests.raw_http import connect


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
