"""Requests pipelined on one connection (sent before the answers to those before them): each is
answered once, in request order (RFC 9112 9.3.2), and what cannot be served (a malformed request,
more than 32 queued, a WebSocket handshake behind unanswered requests) is answered 400 after the
answers to the requests before it, and ends the connection. A real gateway process over raw
sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import GatewayProcess, started_gateway
from tests.raw_http import (
    HEALTHZ,
    connect,
    non_reading_connection,
    read_healthz_answer,
    read_until_closed,
    statuses,
)

READ_TIMEOUT_S = 1
# The shortest request uvicorn parses: answered 404, a few hundred bytes of answer each.
TINY_REQUEST = b"GET /x HTTP/1.1\r\n\r\n"
WEBSOCKET_HANDSHAKE = (
    b"GET /graphql HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
)


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("pipelining"),
        database_url,
        EHRGW_REQUEST_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    ) as running:
        yield running


def exchange(gateway: GatewayProcess, packet: bytes) -> tuple[list[bytes], bool]:
    """Send ``packet`` at once; the status codes answered, and whether the gateway then closed
    the connection (rather than falling quiet for 2 s)."""
    with connect(gateway) as connection:
        connection.sendall(packet)
        received, closed = read_until_closed(connection, quiet=2)
    return statuses(received), closed


def test_pipelined_requests_are_each_answered_in_order(gateway: GatewayProcess) -> None:
    statuses, closed = exchange(gateway, HEALTHZ * 10 + b"GET /x HTTP/1.1\r\n\r\n")
    assert statuses == [b"200"] * 10 + [b"404"]
    assert not closed


def test_a_request_before_a_malformed_one_is_answered_first(gateway: GatewayProcess) -> None:
    """The whole packet is parsed before the first request's answer is written: the 400 for
    the malformed request waits for it."""
    statuses, closed = exchange(gateway, HEALTHZ + b"NOT\x01A REQUEST\r\n\r\n")
    assert statuses == [b"200", b"400"]
    assert closed


def test_more_than_32_queued_requests_end_the_connection(gateway: GatewayProcess) -> None:
    """One request answered and 32 queued behind it: the next is answered 400 after them."""
    statuses, closed = exchange(gateway, HEALTHZ * 100)
    assert statuses == [b"200"] * 33 + [b"400"]
    assert closed


def test_a_websocket_handshake_behind_unanswered_requests_is_refused_after_them(
    gateway: GatewayProcess,
) -> None:
    """Taken at once, the connection would be the WebSocket's before the answers still due,
    which would be written into its stream after the 101."""
    statuses, closed = exchange(gateway, HEALTHZ * 3 + WEBSOCKET_HANDSHAKE)
    assert statuses == [b"200", b"200", b"200", b"400"]
    assert closed


def test_a_websocket_handshake_after_the_answers_is_taken(gateway: GatewayProcess) -> None:
    with connect(gateway) as connection:
        connection.sendall(HEALTHZ)
        read_healthz_answer(connection)
        connection.sendall(WEBSOCKET_HANDSHAKE)
        assert connection.recv(1 << 16).startswith(b"HTTP/1.1 101 ")


def test_a_malformed_body_of_a_request_already_answered_gets_no_second_answer(
    gateway: GatewayProcess,
) -> None:
    """A chunked POST without a token is answered 401 from its head; then a chunk size that is
    not one. A 400 as well would be taken, by a client or front end that has sent its next
    request, as that request's answer: the connection is closed with nothing more written."""
    with connect(gateway) as connection:
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        answered = b""
        while b"\r\n\r\n" not in answered:
            answered += connection.recv(1 << 16)
        connection.sendall(b"zz\r\n")
        received, closed = read_until_closed(connection, quiet=3)
    assert statuses(answered + received) == [b"401"], received[:200]
    assert closed


def test_pipelined_tiny_requests_do_not_multiply_into_held_memory(
    gateway: GatewayProcess,
) -> None:
    """Each of 4 connections sends 20,000 pipelined 19-byte requests (380 KB) and reads
    nothing: uvicorn alone queues a request cycle for each one it reads (about 40 MB a
    connection)."""
    pid = gateway.process.pid
    before = resident_kib(pid)
    connections = [non_reading_connection(gateway) for _ in range(4)]
    try:
        for connection in connections:
            send_without_reading(connection, TINY_REQUEST * 20_000, within=5)
        grown = 0
        for _ in range(20):  # the gateway works through what it read
            time.sleep(0.5)
            grown = max(grown, resident_kib(pid) - before)
    finally:
        for connection in connections:
            connection.close()
    assert grown < 32 * 1024, (
        f"4 connections of pipelined 19-byte requests grew the gateway by {grown // 1024} MB"
    )


def send_without_reading(connection: socket.socket, data: bytes, within: float) -> int:
    """Send as much of ``data`` as the gateway takes in ``within`` seconds; the bytes sent."""
    connection.setblocking(False)
    sent = 0
    deadline = time.monotonic() + within
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += connection.send(data[sent:])
        except BlockingIOError:
            time.sleep(0.05)
    connection.setblocking(True)
    return sent


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
