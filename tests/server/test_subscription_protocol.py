"""The subscription endpoint of a real gateway process under protocol abuse and through its
lifecycle: operations before connection_init, silent clients, malformed messages, too many
operations on one connection, clients that vanish mid-stream, and shutdown."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.gql.test_configuration_changed import (
    CONFIGURATION_CHANGED,
    new_tenant,
    write_versions,
)
from tests.processes import GatewayProcess, LegacyWsClient, TransportWsClient

INIT_TIMEOUT_S = 1
MAX_SUBSCRIPTIONS = 3
ALARMS = ("Task was destroyed but it is pending", "Traceback", "Exception in ASGI application")

PROTOCOLS = pytest.mark.parametrize(
    "client", [TransportWsClient, LegacyWsClient], ids=lambda c: c.protocol
)


def start_gateway(data_dir: Path, database_url: str) -> GatewayProcess:
    return GatewayProcess(
        data_dir,
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"protocol_{uuid.uuid4().hex[:8]}",
        EHRGW_WS_INIT_TIMEOUT_S=str(INIT_TIMEOUT_S),
        EHRGW_WS_MAX_SUBSCRIPTIONS=str(MAX_SUBSCRIPTIONS),
    )


@pytest.fixture(scope="module")
def shared(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    running = start_gateway(tmp_path_factory.mktemp("protocol"), database_url)
    yield running
    running.stop()


@pytest.fixture
def gateway(shared: GatewayProcess) -> GatewayProcess:
    if shared.process.poll() is not None:
        pytest.fail("the shared gateway process has exited")
    return shared


@pytest.fixture
def printed(shared: GatewayProcess) -> Callable[[], str]:
    """What the shared gateway prints during this test (so far, when called)."""
    start = len(shared.printed())
    return lambda: shared.printed()[start:]


@pytest.fixture
def own(database_url: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway process of this test's own."""
    running = start_gateway(tmp_path, database_url)
    yield running
    running.stop()


def assert_nothing_alarming(output: str) -> None:
    """No line of ``output`` tells of trouble; a traceback is summed up by its exception."""
    lines = output.splitlines()
    alarms = []
    for number, line in enumerate(lines):
        if "Traceback" in line:
            ending = next((later for later in lines[number + 1 :] if not later[:1].isspace()), "")
            alarms.append(f"Traceback ending in {ending!r}")
        elif any(alarm in line for alarm in ALARMS):
            alarms.append(line)
    assert not alarms, "\n".join(alarms)


async def subscribers(gateway: GatewayProcess) -> int:
    count: int = (await asyncio.to_thread(gateway.health))["subscribers"]
    return count


async def wait_for_subscribers(gateway: GatewayProcess, expected: int, within: float = 5) -> None:
    deadline = time.monotonic() + within
    count = await subscribers(gateway)
    while count != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count = await subscribers(gateway)
    assert count == expected, f"{count} subscribers after {within}s, expected {expected}"


async def messages_until_closed(
    client: TransportWsClient, within: float = 5
) -> tuple[list[dict[str, Any]], int | None]:
    """Everything the server sends until it closes the connection, and its close code (None
    when the connection ended without a close frame)."""
    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(client.connection.recv(), within)))
    except websockets.ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd else None


def error_messages(message: dict[str, Any]) -> list[str]:
    """The messages of an ``error`` message's payload (a list in graphql-transport-ws, one
    object in graphql-ws)."""
    payload = message["payload"]
    return [error["message"] for error in (payload if isinstance(payload, list) else [payload])]


async def first_versions(client: TransportWsClient, *operation_ids: str) -> dict[str, int]:
    """The version in the first result of each operation (results of others are skipped)."""
    first: dict[str, int] = {}
    while len(first) < len(operation_ids):
        message = await client.receive()
        assert message["type"] in ("next", "data"), message
        if message["id"] in operation_ids and message["id"] not in first:
            first[message["id"]] = message["payload"]["data"]["configurationChanged"]["version"]
    return first


async def first_version_of(client: TransportWsClient, operation_id: str) -> int:
    version: int = (await client.next_data(operation_id))["configurationChanged"]["version"]
    return version


async def test_legacy_start_before_connection_init_is_closed_as_unauthorized(
    gateway: GatewayProcess,
) -> None:
    """GHSA-vpwc-v33q-mq89: a graphql-ws client must not run operations without the
    connection_init handshake (where authentication happens)."""
    tenant_id = new_tenant(gateway)
    before = await subscribers(gateway)
    intruder = await LegacyWsClient.connect(gateway.ws_url, init=False)

    await intruder.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)

    assert await messages_until_closed(intruder) == ([], 4401)
    assert await subscribers(gateway) == before


async def test_transport_subscribe_before_connection_init_is_closed_as_unauthorized(
    gateway: GatewayProcess,
) -> None:
    tenant_id = new_tenant(gateway)
    before = await subscribers(gateway)
    intruder = await TransportWsClient.connect(gateway.ws_url, init=False)

    await intruder.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)

    assert await messages_until_closed(intruder) == ([], 4401)
    assert await subscribers(gateway) == before


async def test_a_client_that_never_sends_connection_init_is_closed_after_the_configured_wait(
    gateway: GatewayProcess,
) -> None:
    opened = time.monotonic()
    silent = await TransportWsClient.connect(gateway.ws_url, init=False)

    messages, code = await messages_until_closed(silent, within=INIT_TIMEOUT_S + 5)

    waited = time.monotonic() - opened
    assert (messages, code) == ([], 4408)
    assert INIT_TIMEOUT_S <= waited < INIT_TIMEOUT_S + 3, waited


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "WebSocket message must be valid JSON"),
        (json.dumps({"id": "1", "payload": {}}), "Failed to parse message"),
        (json.dumps({"type": "bogus"}), "Unknown message type: bogus"),
    ],
    ids=["not-json", "no-type", "unknown-type"],
)
async def test_a_malformed_transport_message_closes_the_connection_as_a_bad_request(
    gateway: GatewayProcess, printed: Callable[[], str], message: str, reason: str
) -> None:
    client = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)

    await client.connection.send(message)

    assert await messages_until_closed(client) == ([], 4400)
    assert client.connection.close_reason == reason
    assert (await asyncio.to_thread(gateway.health))["status"] == "ok"
    assert_nothing_alarming(printed())


async def test_a_transport_message_that_is_json_but_not_an_object_is_a_bad_request(
    gateway: GatewayProcess, printed: Callable[[], str]
) -> None:
    """Like any other malformed message: closed with 4400, and nothing alarming is logged."""
    codes = []
    for message in ("[1, 2]", '"connection_init"', "null"):
        client = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
        await client.connection.send(message)
        codes.append((message, (await messages_until_closed(client))[1]))

    assert (await asyncio.to_thread(gateway.health))["status"] == "ok"
    assert codes == [("[1, 2]", 4400), ('"connection_init"', 4400), ("null", 4400)]
    assert_nothing_alarming(printed())


async def test_legacy_ignores_messages_it_cannot_parse_or_does_not_know(
    gateway: GatewayProcess, printed: Callable[[], str]
) -> None:
    """graphql-ws has no close code for a bad message: the server ignores text that is not
    JSON and unknown message types, and the connection goes on working."""
    tenant_id = new_tenant(gateway)
    client = await LegacyWsClient.connect(gateway.ws_url, init=False)

    await client.connection.send("not json")
    await client.send({"type": "bogus", "id": "1"})
    await client.send(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {gateway.token}"}}
    )

    assert await client.receive() == {"type": "connection_ack"}
    await client.send({"type": "bogus-after-init"})
    await client.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    assert await first_version_of(client, "1") == 1
    await client.close()
    assert_nothing_alarming(printed())


async def test_a_legacy_message_it_cannot_read_ends_only_that_connection_quietly(
    gateway: GatewayProcess, printed: Callable[[], str]
) -> None:
    """JSON without a type, JSON that is not an object, a start without a payload: the
    offending connection ends; the server stays up, serves others, and logs no traceback for
    what is a client's mistake."""
    tenant_id = new_tenant(gateway)
    ended = []
    for message in ({"id": "1"}, [1, 2], {"type": "start", "id": "1"}):
        client = await LegacyWsClient.connect(gateway.ws_url, token=gateway.token)
        await client.connection.send(json.dumps(message))
        messages, _ = await messages_until_closed(client)
        ended.append(messages)

    assert ended == [[], [], []]
    healthy = await LegacyWsClient.connect(gateway.ws_url, token=gateway.token)
    await healthy.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    assert await first_version_of(healthy, "1") == 1
    await healthy.close()
    assert_nothing_alarming(printed())


@PROTOCOLS
async def test_a_connection_runs_at_most_the_configured_number_of_operations(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    tenant_id = new_tenant(gateway)
    before = await subscribers(gateway)
    dashboard = await client.connect(gateway.ws_url, token=gateway.token)
    for operation_id in ("1", "2", "3"):
        await dashboard.subscribe(
            operation_id, CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=1
        )
    await wait_for_subscribers(gateway, before + MAX_SUBSCRIPTIONS)

    await dashboard.subscribe("4", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=1)

    # Refused with a code of its own, on either protocol: the client can tell it from a failure
    # of the operation itself, and start it on another connection.
    refusal = await dashboard.receive()
    assert (refusal["type"], refusal["id"]) == ("error", "4")
    payload = refusal["payload"]
    [error] = payload if isinstance(payload, list) else [payload]
    assert error["extensions"] == {"code": "TOO_MANY_OPERATIONS"}, refusal
    assert error["message"] == (
        "this connection has its 3 operations running: end one, or start this one on another "
        "connection"
    )
    assert await subscribers(gateway) == before + MAX_SUBSCRIPTIONS

    await asyncio.to_thread(write_versions, gateway, tenant_id, "reaches-the-first-three")
    received = {}
    for _ in range(MAX_SUBSCRIPTIONS):
        message = await dashboard.receive()
        assert message["type"] in ("next", "data"), message
        received[message["id"]] = message["payload"]["data"]["configurationChanged"]["version"]
    assert received == {"1": 2, "2": 2, "3": 2}
    await dashboard.close()
    await wait_for_subscribers(gateway, before)


async def test_ending_an_operation_frees_its_place_on_the_connection(
    gateway: GatewayProcess,
) -> None:
    tenant_id = new_tenant(gateway)
    before = await subscribers(gateway)
    dashboard = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    for operation_id in ("1", "2", "3"):
        await dashboard.subscribe(
            operation_id, CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0
        )
    assert await first_versions(dashboard, "1", "2", "3") == {"1": 1, "2": 1, "3": 1}

    await dashboard.send({"id": "1", "type": "complete"})
    await wait_for_subscribers(gateway, before + MAX_SUBSCRIPTIONS - 1)
    await dashboard.subscribe("4", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)

    assert await first_version_of(dashboard, "4") == 1
    await dashboard.close()
    await wait_for_subscribers(gateway, before)


@PROTOCOLS
async def test_operations_ended_as_soon_as_they_start_leave_no_subscriber_behind(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    """A client that subscribes and at once completes (or stops) the operation, again and
    again: once it is gone, so are all its subscriptions."""
    tenant_id = new_tenant(gateway)
    before = await subscribers(gateway)
    impatient = await client.connect(gateway.ws_url, token=gateway.token)
    end = "complete" if client is TransportWsClient else "stop"

    for attempt in range(50):
        operation_id = str(attempt)
        await impatient.subscribe(
            operation_id, CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0
        )
        await asyncio.sleep(attempt % 5 * 0.002)  # ended at different points of its start
        await impatient.send({"id": operation_id, "type": end})
    impatient.connection.transport.abort()  # gone, without waiting for the server

    await wait_for_subscribers(gateway, before)


@PROTOCOLS
async def test_a_client_that_vanishes_mid_stream_leaves_no_subscriber_behind(
    gateway: GatewayProcess, printed: Callable[[], str], client: type[TransportWsClient]
) -> None:
    tenant_id = new_tenant(gateway)
    await asyncio.to_thread(write_versions, gateway, tenant_id, *(f"k{n}" for n in range(2, 7)))
    before = await subscribers(gateway)
    vanishing = await client.connect(gateway.ws_url, token=gateway.token)
    await vanishing.subscribe("history", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    await vanishing.subscribe("live", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=5)
    assert await first_versions(vanishing, "history", "live") == {"history": 1, "live": 6}
    assert await subscribers(gateway) == before + 2

    vanishing.connection.transport.abort()  # no complete, no close frame: the TCP connection ends

    await wait_for_subscribers(gateway, before)
    other = await client.connect(gateway.ws_url, token=gateway.token)
    await other.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=6)
    await asyncio.to_thread(write_versions, gateway, tenant_id, "after-the-vanishing")
    assert await first_version_of(other, "1") == 7
    await other.close()
    assert_nothing_alarming(printed())


def test_the_abuse_left_nothing_alarming_in_the_gateway_output(shared: GatewayProcess) -> None:
    """Runs after the tests above, on the process they shared."""
    output = shared.stop()

    assert_nothing_alarming(output)


async def test_sigterm_ends_open_subscriptions_and_the_process_exits_cleanly(
    own: GatewayProcess,
) -> None:
    gateway = own
    tenant_id = new_tenant(gateway)
    current = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    legacy = await LegacyWsClient.connect(gateway.ws_url, token=gateway.token)
    for subscriber in (current, legacy):
        await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
        assert await first_version_of(subscriber, "1") == 1

    stopping = asyncio.create_task(asyncio.to_thread(gateway.stop, 10))
    endings = [await messages_until_closed(subscriber) for subscriber in (current, legacy)]
    output = await stopping

    for messages, code in endings:
        assert code is not None, "the connection ended without a close frame"
        assert messages in ([], [{"type": "complete", "id": "1"}]), messages
    assert gateway.exited_by_itself, "still running 10 s after SIGTERM:\n" + output[-2000:]
    assert_nothing_alarming(output)
    assert gateway.process.returncode == 0, output[-2000:]
