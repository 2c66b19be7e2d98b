"""Live subscriptions that share a group get its results written straight to their connections
(gql.fanout), against a real gateway process: every version once and in order on each
operation of a connection, a client that stops reading among clients that read, and operations
ended and connections closed while their frames wait."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets

from tests.gql.test_configuration_changed import (
    CONFIGURATION_CHANGED,
    new_tenant,
    write_versions,
)
from tests.processes import GatewayProcess, LegacyWsClient, TransportWsClient, started_gateway
from tests.server.test_subscription_protocol import assert_nothing_alarming, wait_for_subscribers

# A second document on the same tenant: a group of its own.
VERSIONS_ONLY = """
subscription VersionsOnly($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId) { version }
}
"""
# Frames of about 50 KB (50 headers of 1000 characters in every result): a few versions for a
# few operations outgrow every buffer between the gateway and a client that stops reading (the
# client's, both kernels', the server's), so the gateway has to hold its frames back.
WIDE = """
subscription Wide($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId) {
    version
    settings { headers { ... on GenericHeaderSettings { customHeaders { name value } } } }
  }
}
"""
WIDE_HEADERS = """
mutation WideHeaders($tenantId: ID!, $headers: [CustomHeaderInput!]!) {
  updateHeaderSettings(tenantId: $tenantId, input: {ellkay: {customHeaders: $headers}}) {
    __typename
  }
}
"""
PROTOCOLS = pytest.mark.parametrize(
    "client", [TransportWsClient, LegacyWsClient], ids=lambda c: c.protocol
)
SLOW_OPERATIONS = 10
# Fewer than an operation's queue holds (64): a client that falls behind this far still gets
# every version. (Past it, the newest only: tests/gql/test_subscriber_queue_bound.py.)
VERSIONS_WHILE_SLOW = 24
SLOW_READS = [f"s{n}" for n in range(SLOW_OPERATIONS)]


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(tmp_path_factory.mktemp("fanout"), database_url) as running:
        yield running


def wide_tenant(gateway: GatewayProcess) -> str:
    """A tenant (at version 2) whose results are about 50 KB each."""
    tenant_id = new_tenant(gateway)
    headers = [{"name": f"X-Wide-{n}", "value": "w" * 1000} for n in range(50)]
    body = gateway.graphql(WIDE_HEADERS, tenantId=tenant_id, headers=headers)
    assert body["data"]["updateHeaderSettings"]["__typename"] == "SettingsSaved", body
    return tenant_id


@pytest.fixture
def printed(gateway: GatewayProcess) -> Callable[[], str]:
    start = len(gateway.printed())
    return lambda: gateway.printed()[start:]


def version_of(message: dict[str, Any]) -> int:
    version: int = message["payload"]["data"]["configurationChanged"]["version"]
    return version


def skipped(message: dict[str, Any]) -> bool:
    return bool((message["payload"].get("extensions") or {}).get("versionsSkipped"))


async def until_every_operation_has(
    client: TransportWsClient, operation_ids: list[str], last: int
) -> list[dict[str, Any]]:
    """Every message, until each of ``operation_ids`` has had a result of version ``last``."""
    messages: list[dict[str, Any]] = []
    waiting = set(operation_ids)
    while waiting:
        message = await client.receive()
        messages.append(message)
        if message["type"] in ("next", "data") and version_of(message) == last:
            waiting.discard(message["id"])
    return messages


def versions_by_operation(messages: list[dict[str, Any]]) -> dict[str, list[int]]:
    versions: dict[str, list[int]] = {}
    for message in messages:
        if message["type"] in ("next", "data"):
            versions.setdefault(message["id"], []).append(version_of(message))
    return versions


async def subscribed(
    client: TransportWsClient, tenant_id: str, *operations: str,
    document: str = CONFIGURATION_CHANGED,
) -> None:  # fmt: skip
    for operation_id in operations:
        await client.subscribe(operation_id, document, tenantId=tenant_id)


async def connect_reader_that_stalls(
    gateway: GatewayProcess, client: type[TransportWsClient] = TransportWsClient
) -> TransportWsClient:
    """A client that takes frames off the socket only while the test reads: a small receive
    buffer, and at most one message held by the client library."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gateway.port))
    sock.setblocking(False)
    connection = await websockets.connect(
        gateway.ws_url,
        sock=sock,
        subprotocols=[client.protocol],  # type: ignore[list-item]
        max_queue=1,
        # Its pings would wait behind the frames it does not read.
        ping_interval=None,
        # Frames as large on the wire as they are (compressed, repeated settings take little).
        compression=None,
    )
    stalling = client(connection)
    await stalling.send(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {gateway.token}"}}
    )
    assert await stalling.receive() == {"type": "connection_ack"}
    return stalling


@asynccontextmanager
async def slow_and_fast_readers(
    gateway: GatewayProcess, tenant_id: str
) -> AsyncIterator[tuple[TransportWsClient, TransportWsClient]]:
    """A connection that stops reading, with SLOW_READS subscribed to the tenant, and one that
    reads, with "f": all of them in one group (the same document)."""
    slow = await connect_reader_that_stalls(gateway)
    fast = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    try:
        await subscribed(slow, tenant_id, *SLOW_READS, document=WIDE)
        await subscribed(fast, tenant_id, "f", document=WIDE)
        await wait_for_subscribers(gateway, len(SLOW_READS) + 1)
        yield slow, fast
    finally:
        await slow.close()
        await fast.close()


@PROTOCOLS
async def test_each_operation_on_a_connection_gets_every_version_once_in_order(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    tenant_id = new_tenant(gateway)  # version 1
    shared = ["a", "b", "c"]  # one group
    subscriber = await client.connect(gateway.ws_url, token=gateway.token)
    other = await client.connect(gateway.ws_url, token=gateway.token)
    try:
        await subscribed(subscriber, tenant_id, *shared)
        await subscribed(subscriber, tenant_id, "own", document=VERSIONS_ONLY)
        await subscribed(other, tenant_id, "a")  # the same group, another connection
        await wait_for_subscribers(gateway, 5)
        write_versions(gateway, tenant_id, *(f"k{n}" for n in range(2, 22)))

        messages = await until_every_operation_has(subscriber, [*shared, "own"], last=21)
        elsewhere = await until_every_operation_has(other, ["a"], last=21)
    finally:
        await subscriber.close()
        await other.close()

    every_version = list(range(2, 22))
    assert versions_by_operation(messages) == dict.fromkeys([*shared, "own"], every_version)
    assert versions_by_operation(elsewhere) == {"a": every_version}
    kind = "next" if client is TransportWsClient else "data"
    assert {message["type"] for message in messages + elsewhere} == {kind}
    assert not any(skipped(message) for message in messages + elsewhere)
    first = next(message for message in messages if message["id"] == "a")
    assert first["payload"]["data"]["configurationChanged"]["tenantId"] == tenant_id
    assert set(first["payload"]) == {"data"}


async def test_a_client_that_stops_reading_delays_no_one_and_then_gets_every_version_in_order(
    gateway: GatewayProcess, printed: Callable[[], str]
) -> None:
    tenant_id = wide_tenant(gateway)  # version 2
    last = 2 + VERSIONS_WHILE_SLOW
    async with slow_and_fast_readers(gateway, tenant_id) as (slow, fast):
        # The slow client reads nothing while every version is written and the fast one gets
        # them all: the group's loop does not wait for the connection that does not keep up.
        fast_reads = asyncio.create_task(until_every_operation_has(fast, ["f"], last=last))
        await asyncio.to_thread(
            write_versions, gateway, tenant_id, *(f"k{n}" for n in range(3, last + 1))
        )
        fast_messages = await fast_reads

        slow_messages = await until_every_operation_has(slow, SLOW_READS, last=last)

    every_version = list(range(3, last + 1))
    assert versions_by_operation(fast_messages) == {"f": every_version}
    assert versions_by_operation(slow_messages) == dict.fromkeys(SLOW_READS, every_version)
    assert not any(skipped(message) for message in fast_messages + slow_messages)
    assert_nothing_alarming(printed())


@PROTOCOLS
async def test_an_operation_ended_while_its_frames_wait_gets_nothing_more(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    tenant_id = wide_tenant(gateway)  # version 2
    slow = await connect_reader_that_stalls(gateway, client)
    ending = [f"e{n}" for n in range(SLOW_OPERATIONS)]
    staying = [f"s{n}" for n in range(SLOW_OPERATIONS)]
    last = 2 + VERSIONS_WHILE_SLOW
    try:
        await subscribed(slow, tenant_id, *ending, *staying, document=WIDE)
        await wait_for_subscribers(gateway, 2 * SLOW_OPERATIONS)
        await asyncio.to_thread(
            write_versions, gateway, tenant_id, *(f"k{n}" for n in range(3, last))
        )
        # Ended while their frames wait behind a connection that does not read.
        for operation_id in ending:
            await slow.send(
                {"id": operation_id, "type": "complete" if client is TransportWsClient else "stop"}
            )
        if client is TransportWsClient:
            await wait_for_subscribers(gateway, len(staying))
        # (graphql-ws answers each stop with a `complete`, which waits for the client to read,
        # so its stops are taken one at a time as it reads.)
        write_versions(gateway, tenant_id, "last")
        messages = await until_every_operation_has(slow, staying, last=last)
    finally:
        await slow.close()

    versions = versions_by_operation(messages)
    every_version = list(range(3, last + 1))
    assert {operation_id: versions[operation_id] for operation_id in staying} == {
        operation_id: every_version for operation_id in staying
    }
    for operation_id in ending:
        ended = versions.get(operation_id, [])
        assert ended == sorted(set(ended))
        if client is TransportWsClient:
            assert last not in ended  # written after it ended
        else:
            # graphql-ws says an operation is over with `complete`: nothing of it after that.
            kinds = [m["type"] for m in messages if m.get("id") == operation_id]
            assert kinds.count("complete") == 1 and kinds[-1] == "complete", kinds


async def test_a_connection_closed_while_its_frames_wait_leaves_the_others_served(
    gateway: GatewayProcess, printed: Callable[[], str]
) -> None:
    tenant_id = wide_tenant(gateway)  # version 2
    last = 2 + VERSIONS_WHILE_SLOW
    async with slow_and_fast_readers(gateway, tenant_id) as (slow, fast):
        await asyncio.to_thread(
            write_versions, gateway, tenant_id, *(f"k{n}" for n in range(3, last - 1))
        )
        # Gone without a close handshake, its frames still waiting to be written.
        slow.connection.transport.abort()
        await wait_for_subscribers(gateway, 1)
        write_versions(gateway, tenant_id, "after", "closed")
        messages = await until_every_operation_has(fast, ["f"], last=last)

    assert versions_by_operation(messages) == {"f": list(range(3, last + 1))}
    assert_nothing_alarming(printed())
