"""A request with an Upgrade the gateway does not take (anything but a WebSocket handshake; curl
sends `Upgrade: h2c` with --http2) is answered 400 and ends the connection. httptools skips the
body of a request with an Upgrade (it belongs to the new protocol): answered as a plain request,
its body was read as a request of its own, so a front end passing `Upgrade` through forwarded
one request and got two answers. A real gateway process over raw sockets."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.processes import GatewayProcess, started_gateway
from tests.raw_http import HEALTHZ, connect, read_until_closed, statuses

# A request of its own, sent where the gateway must not read one.
SMUGGLED = HEALTHZ


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("smuggling"), database_url, EHRGW_REQUEST_READ_TIMEOUT_S="1"
    ) as running:
        yield running


def test_the_body_of_a_request_with_an_upgrade_not_taken_is_not_read_as_a_request(
    gateway: GatewayProcess,
) -> None:
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nConnection: Upgrade\r\nUpgrade: foo\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
    )
    with connect(gateway) as connection:
        connection.sendall(head)
        time.sleep(0.5)  # the body in a read of its own, as a streaming front end sends it
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(SMUGGLED)  # the head may be refused before its body arrives
        received, closed = read_until_closed(connection, quiet=2)
    assert statuses(received) == [b"400"], received[-200:]
    assert closed


def test_an_h2c_upgrade_is_refused_and_ends_the_connection(gateway: GatewayProcess) -> None:
    """What follows it on the connection is not read (the parser stops at an upgrade): a
    request pipelined after it is not answered, and the client learns so at once from the
    close, rather than waiting for an answer until the keep-alive idleness ends."""
    upgrading = (
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    with connect(gateway) as connection:
        connection.sendall(upgrading + SMUGGLED)
        received, closed = read_until_closed(connection, quiet=2)
    assert statuses(received) == [b"400"]
    assert closed
