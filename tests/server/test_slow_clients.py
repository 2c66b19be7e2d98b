"""Clients that hold connections open without finishing a request (slowloris), or without taking
their answers: a real gateway process closes each once its request read deadline passes, and
serves everyone else meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gql.test_configuration_changed import (
    CONFIGURATION_CHANGED,
    new_tenant,
    write_versions,
)
from tests.processes import GatewayProcess, TransportWsClient, started_gateway
from tests.raw_http import (
    HEALTHZ,
    connect,
    non_reading_connection,
    read_healthz_answer,
    read_until_closed,
    statuses,
)

READ_TIMEOUT_S = 1
# uvicorn's own keep-alive idleness, which the gateway does not change.
KEEP_ALIVE_S = 5
# GraphiQL's script (3.5 MB), served without a token in development mode: more than the kernel's
# socket buffers take for a client that reads nothing.
LARGE_FILE = b"/graphiql/graphiql.min.js"
PARTIAL_REQUEST = b"POST /graphql HTTP/1.1\r\nHost: gateway\r\n"


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("slow-clients"),
        database_url,
        EHRGW_REQUEST_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    ) as running:
        yield running


def closed_by_the_server(connection: socket.socket, *, within: float) -> bool:
    """Whether the gateway closes ``connection`` (reads end of stream) within ``within`` s,
    while the client keeps sending nothing more."""
    connection.settimeout(within)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_request_whose_headers_never_finish_is_closed(gateway: GatewayProcess) -> None:
    with connect(gateway) as connection:
        connection.sendall(PARTIAL_REQUEST)
        assert closed_by_the_server(connection, within=READ_TIMEOUT_S + 9)


def test_a_connection_that_sends_nothing_is_closed(gateway: GatewayProcess) -> None:
    with connect(gateway) as connection:
        assert closed_by_the_server(connection, within=READ_TIMEOUT_S + 9)


def test_a_body_sent_a_byte_at_a_time_does_not_keep_the_connection(
    gateway: GatewayProcess,
) -> None:
    body = b'{"query": "{ __typename }"}'
    with connect(gateway) as connection:
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
        )
        closed = False
        for byte in body[:-1]:  # a byte every half second: longer in all than the deadline
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.5)
        assert closed or closed_by_the_server(connection, within=READ_TIMEOUT_S + 9)


def test_many_slow_connections_leave_the_gateway_serving(gateway: GatewayProcess) -> None:
    slow = [connect(gateway) for _ in range(200)]
    try:
        for connection in slow:
            connection.sendall(PARTIAL_REQUEST)
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        assert all(closed_by_the_server(c, within=READ_TIMEOUT_S + 9) for c in slow)
    finally:
        for connection in slow:
            connection.close()


async def test_requests_and_subscriptions_outlast_the_deadline(gateway: GatewayProcess) -> None:
    """The deadline is for receiving a request, not for the connection: a keep-alive client
    and a WebSocket subscription go on well past it."""
    tenant_id = await asyncio.to_thread(new_tenant, gateway)
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    await subscriber.subscribe("live", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    assert (await subscriber.next_data("live"))["configurationChanged"]["version"] == 1

    headers = {"authorization": f"Bearer {gateway.token}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as client:
        first = await client.post("/graphql", json={"query": "{ __typename }"})
        await asyncio.sleep(READ_TIMEOUT_S * 2.5)
        await asyncio.to_thread(write_versions, gateway, tenant_id, "later")
        second = await client.post("/graphql", json={"query": "{ __typename }"})

    assert first.json() == second.json() == {"data": {"__typename": "Query"}}
    assert (await subscriber.next_data("live"))["configurationChanged"]["version"] == 2


@pytest.mark.parametrize(
    "body_header", ["content-length: 5", "transfer-encoding: chunked"], ids=["length", "chunked"]
)
def test_a_websocket_handshake_announcing_a_body_is_refused(
    gateway: GatewayProcess, body_header: str
) -> None:
    """Such a request counts as complete at its headers, so the read deadline had ended; handed
    to the WebSocket side it was held open forever, with no answer, and without a token."""
    with connect(gateway) as connection:
        connection.sendall(
            b"GET /graphql HTTP/1.1\r\nHost: gateway\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + body_header.encode() + b"\r\n\r\n"
        )
        answer, closed = read_until_closed(connection, quiet=READ_TIMEOUT_S + 9)
    assert closed, "the connection was still open"
    assert answer.startswith(b"HTTP/1.1 400")


def test_an_empty_line_after_an_answer_does_not_keep_the_connection(
    gateway: GatewayProcess,
) -> None:
    """Any bytes cancel uvicorn's keep-alive timer, and the parser skips empty lines without
    beginning a request: two bytes sent after an answer start the read deadline instead."""
    with connect(gateway) as connection:
        connection.sendall(HEALTHZ)
        read_healthz_answer(connection)
        connection.sendall(b"\r\n")
        assert closed_by_the_server(connection, within=READ_TIMEOUT_S + KEEP_ALIVE_S + 9)


def test_a_body_sent_after_its_answer_does_not_keep_the_connection(
    gateway: GatewayProcess,
) -> None:
    """A POST without a token is answered 401 from its head; its body, sent after the answer,
    cancels the keep-alive timer and completes the request, which ends its read deadline: the
    connection is then idle between requests, and closed as such."""
    query = b'{"query":"{__typename}"}'
    with connect(gateway) as connection:
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(query)
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(1 << 16)
        assert answer.startswith(b"HTTP/1.1 401 ")
        time.sleep(0.2)  # the body in a read of its own, after the answer
        connection.sendall(query)
        assert closed_by_the_server(connection, within=READ_TIMEOUT_S + KEEP_ALIVE_S + 9)


# More than the body limit (EHRGW_MAX_BODY_BYTES, 256 KiB by default) many times over.
_BODY_MEBIBYTES = 16
_MEBIBYTE = b"a" * (1 << 20)


def test_a_body_after_an_early_answer_is_not_read_past_the_body_limit(
    gateway: GatewayProcess,
) -> None:
    """With no credentials at all: a chunked POST answered 401 from its head, then a body of
    16 MiB, then another request on the same connection. The gate, which holds bodies to the
    body limit, no longer reads it: the connection is closed once the dropped body passes the
    limit, instead of reading it whole and serving the next request."""
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    with connect(gateway, timeout=20) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(head + b"%x\r\n" % (_BODY_MEBIBYTES << 20))
            for _ in range(_BODY_MEBIBYTES):
                connection.sendall(_MEBIBYTE)
            connection.sendall(b"\r\n0\r\n\r\n" + HEALTHZ)
        received, closed = read_until_closed(connection, quiet=5)

    assert statuses(received) == [b"401"], received[:300]
    assert closed


def test_clients_that_never_read_their_answers_are_disconnected(gateway: GatewayProcess) -> None:
    """Each of 10 connections asks for a 3.5 MB file and reads nothing: an answer that waits
    longer than the read deadline for the client to take any of it ends the connection, and the
    gateway lets go of its descriptor and of the answer."""
    pid = gateway.process.pid
    before = open_descriptors(pid)
    connections = [non_reading_connection(gateway) for _ in range(10)]
    try:
        for connection in connections:
            connection.sendall(b"GET %s HTTP/1.1\r\nHost: gateway\r\n\r\n" % LARGE_FILE)
        time.sleep(READ_TIMEOUT_S + KEEP_ALIVE_S + 6)  # the clients read nothing meanwhile
        held = open_descriptors(pid) - before
        # What the first connection was sent before it was dropped: a part of the answer, all in
        # this side's buffers by now (quiet for less than the keep-alive idleness, which would
        # close a connection that had been sent its whole answer).
        taken, closed = read_until_closed(connections[0], quiet=2)
    finally:
        for connection in connections:
            connection.close()
    assert held < 5, f"{held} descriptors still held for 10 clients that stopped reading"
    assert closed, "the connection was still open"
    assert taken.startswith(b"HTTP/1.1 200 ")


def open_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
