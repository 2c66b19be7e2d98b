"""A WebSocket connection is held to the limits an HTTP request is held to, and lives no longer
than its token: attacks on a real gateway process (uvicorn's own WebSocket stack) with messages
past the size cap, documents past the token limit, distinct documents that would fill the
parse caches, JSON nested thousands deep, tokens that expire while connected, and a second
connection_init that would swap the connection's caller."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.server.app import create_app
from tests.conftest import gateway_config
from tests.documents import SELECT_EPIC
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED, new_tenant
from tests.processes import GatewayProcess, LegacyWsClient, TransportWsClient, started_gateway
from tests.server.test_subscription_protocol import (
    assert_nothing_alarming,
    error_messages,
    messages_until_closed,
)

PROTOCOLS = pytest.mark.parametrize(
    "client", [TransportWsClient, LegacyWsClient], ids=lambda c: c.protocol
)
BODY_LIMIT = 256 * 1024  # the default EHRGW_MAX_BODY_BYTES
# Above the default EHRGW_MAX_TOKENS, as an operator may raise it: the caches' byte budgets
# must hold for the largest documents a deployment admits, not only for the default.
TOKEN_LIMIT = 5000
MiB = 1024 * 1024

READ_VERSION = """
query ReadVersion($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version provider } }
"""
TYPENAME = "query Typename { __typename }"


def long_subscription(fields: int) -> str:
    """configurationChanged selecting ``version`` ``fields`` times: one token each, 8 bytes."""
    return (
        'subscription Long { configurationChanged(tenantId: "acme") { '
        + "version " * fields
        + "} }"
    )


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def rss_bytes(gateway: GatewayProcess) -> int:
    """The gateway process's resident memory."""
    status = Path(f"/proc/{gateway.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def shared(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("ws-limits"), database_url, EHRGW_MAX_TOKENS=str(TOKEN_LIMIT)
    ) as running:
        yield running


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


def short_lived_token(gateway: GatewayProcess, ttl_s: int, *roles: str) -> tuple[str, int]:
    """A token of ``roles`` on every tenant that expires ``ttl_s`` seconds from now, and when
    (the expiry claim is in whole seconds)."""
    issued = int(time.time())
    token = dev_tokens.mint(
        gateway.data_dir, tenants=["*"], roles=roles, subject="short-lived", ttl_s=ttl_s
    )
    return token, issued + ttl_s


# --- message size --------------------------------------------------------------------------


@PROTOCOLS
async def test_a_message_past_the_body_limit_closes_the_connection_and_pins_no_memory(
    gateway: GatewayProcess, printed: Callable[[], str], client: type[TransportWsClient]
) -> None:
    """The issue's attack: a 12.8 MB subscribe from a viewer. uvicorn refuses it from the frame
    header, so it is never read: the gateway's memory does not grow with it, and HTTP reads on
    the same gateway are answered meanwhile."""
    tenant_id = await asyncio.to_thread(new_tenant, gateway)
    viewer, _ = short_lived_token(gateway, 600, "viewer")
    attacker = await client.connect(gateway.ws_url, token=viewer)
    before = rss_bytes(gateway)

    document = long_subscription(1) + " #" + "x" * (12 * MiB + 800 * 1024)
    kind = "subscribe" if client is TransportWsClient else "start"
    # The gateway may close while the client is still sending.
    with contextlib.suppress(websockets.ConnectionClosed):
        await attacker.send({"id": "big", "type": kind, "payload": {"query": document}})
    messages, code = await messages_until_closed(attacker)

    assert (messages, code) == ([], 1009)
    assert str(BODY_LIMIT) in attacker.connection.close_reason  # names the limit
    read = await asyncio.to_thread(gateway.graphql, READ_VERSION, tenantId=tenant_id)
    assert read["data"]["integrationSettings"] == {"version": 1, "provider": "ELLKAY"}
    assert rss_bytes(gateway) - before < 50 * MiB
    assert_nothing_alarming(printed())


# --- tokens ---------------------------------------------------------------------------------


@PROTOCOLS
async def test_a_subscribe_past_the_token_limit_is_an_error_naming_the_limit(
    gateway: GatewayProcess, printed: Callable[[], str], client: type[TransportWsClient]
) -> None:
    """Under the size cap (48 KB) but past the token limit: refused as HTTP refuses it, with an
    error message for that operation (not a bare `complete`), and the connection lives on."""
    tenant_id = await asyncio.to_thread(new_tenant, gateway)
    connection = await client.connect(gateway.ws_url, token=gateway.token)

    await connection.subscribe("long", long_subscription(TOKEN_LIMIT + 1000))
    refusal = await connection.receive()
    await connection.subscribe("after", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    after = await connection.next_data("after")

    assert (refusal["type"], refusal["id"]) == ("error", "long"), refusal
    assert any(f"more than {TOKEN_LIMIT} tokens" in text for text in error_messages(refusal))
    payload = refusal["payload"]
    codes = {error["extensions"]["code"] for error in (payload if isinstance(payload, list)
                                                        else [payload])}  # fmt: skip
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}
    assert after["configurationChanged"]["version"] == 1
    output = printed()
    assert "version version" not in output  # the document is not logged
    assert_nothing_alarming(output)


async def test_distinct_documents_near_and_past_the_token_limit_pin_a_bounded_amount_of_memory(
    gateway: GatewayProcess, printed: Callable[[], str]
) -> None:
    """Each document below parses to megabytes of AST (a few hundred bytes per token). Parsed
    documents and validation results are kept within byte budgets, so sending many distinct
    ones, over HTTP and over WebSocket, grows the gateway's memory by no more than those
    budgets (48 MB in all), where entry-counted caches kept up to 512 of each."""
    connection = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)

    def near_the_limit(n: int) -> str:
        # An unused variable (refused by validation, whose errors point into the document)
        # with a default list of numbers: one token each.
        values = ",".join("100" for _ in range(TOKEN_LIMIT - 30))
        return f"query Near{n}($unused: [Int] = [{values}]) {{ __typename }}"

    async def past_the_limit(n: int) -> None:
        # 25,000 tokens in 200 KB: under the size cap, five times the token limit.
        document = long_subscription(25_000) + f" # {n}"
        await connection.subscribe(f"past-{n}", document)
        assert (await connection.receive())["type"] == "error"

    await asyncio.to_thread(post_refused, gateway, near_the_limit(-1))
    await past_the_limit(-1)
    before = rss_bytes(gateway)

    for n in range(40):
        await asyncio.to_thread(post_refused, gateway, near_the_limit(n))
    for n in range(10):
        await past_the_limit(n)

    grown = rss_bytes(gateway) - before
    assert grown < 100 * MiB, f"the gateway grew by {grown / MiB:.0f} MiB"
    assert_nothing_alarming(printed())


def post_refused(gateway: GatewayProcess, document: str) -> None:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": document},
        headers={"authorization": f"Bearer {gateway.token}"},
        timeout=30,
    )
    body: dict[str, Any] = response.json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body


# --- JSON depth -----------------------------------------------------------------------------


@PROTOCOLS
@pytest.mark.parametrize("where", ["connection_init", "subscribe"])
async def test_json_nested_5000_deep_closes_the_connection_as_a_bad_request(
    gateway: GatewayProcess,
    printed: Callable[[], str],
    client: type[TransportWsClient],
    where: str,
) -> None:
    """In connection_init (before authentication) and in an operation's variables: closed with
    4400, where it used to drop the connection with no close frame and log a traceback."""
    deep = nested_json(5000)
    if where == "connection_init":
        connection = await client.connect(gateway.ws_url, init=False)
        message = f'{{"type":"connection_init","payload":{deep}}}'
    else:
        connection = await client.connect(gateway.ws_url, token=gateway.token)
        kind = "subscribe" if client is TransportWsClient else "start"
        message = (
            f'{{"id":"deep","type":"{kind}",'
            f'"payload":{{"query":{json.dumps(TYPENAME)},"variables":{deep}}}}}'
        )

    await connection.connection.send(message)

    assert await messages_until_closed(connection) == ([], 4400)
    assert "nested deeper than" in connection.connection.close_reason
    assert (await asyncio.to_thread(gateway.health))["status"] == "ok"
    output = printed()
    assert "RecursionError" not in output
    assert_nothing_alarming(output)


# --- token expiry ---------------------------------------------------------------------------


@PROTOCOLS
async def test_a_live_subscription_ends_when_its_token_expires(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    """Closed with 4403, which graphql-ws clients answer by reconnecting with a fresh token."""
    tenant_id = await asyncio.to_thread(new_tenant, gateway)
    token, expires_at = short_lived_token(gateway, 2, "viewer")
    connection = await client.connect(gateway.ws_url, token=token)

    await connection.subscribe("live", CONFIGURATION_CHANGED, tenantId=tenant_id)
    messages, code = await messages_until_closed(connection, within=30)

    assert code == 4403, messages
    assert time.time() >= expires_at
    assert "expired" in connection.connection.close_reason
    if client is LegacyWsClient:
        assert messages[-1]["type"] == "connection_error", messages


@PROTOCOLS
async def test_an_idle_connection_is_closed_when_its_token_expires(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    """Nothing subscribed: a caller whose access has ended does not keep its authenticated
    connection (and what it holds) by staying quiet, and a client reconnects with a fresh token
    on 4403 as it does when a subscription is running."""
    token, expires_at = short_lived_token(gateway, 2, "viewer")
    connection = await client.connect(gateway.ws_url, token=token)

    messages, code = await messages_until_closed(connection, within=15)

    assert code == 4403, messages
    assert time.time() >= expires_at
    assert "expired" in connection.connection.close_reason
    if client is LegacyWsClient:
        assert messages[-1]["type"] == "connection_error", messages


@PROTOCOLS
async def test_a_mutation_sent_after_the_token_expired_is_refused(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    """The issue's attack: a short-lived token, then a mutation over the socket after expiry
    (a subscription on the legacy protocol). The connection is closed with 4403 and nothing is
    stored."""
    tenant_id = await asyncio.to_thread(new_tenant, gateway)
    token, expires_at = short_lived_token(gateway, 2, "editor")
    connection = await client.connect(gateway.ws_url, token=token)
    await asyncio.sleep(expires_at + 0.5 - time.time())

    # The expiry itself may have closed the connection already, before the operation is sent.
    with contextlib.suppress(websockets.ConnectionClosed):
        if client is TransportWsClient:
            await connection.subscribe("late", SELECT_EPIC, tenantId=tenant_id)
        else:  # the legacy protocol runs subscriptions only
            await connection.subscribe("late", CONFIGURATION_CHANGED, tenantId=tenant_id)
    messages, code = await messages_until_closed(connection)

    assert code == 4403, messages
    assert all(message["type"] == "connection_error" for message in messages), messages
    read = await asyncio.to_thread(gateway.graphql, READ_VERSION, tenantId=tenant_id)
    assert read["data"]["integrationSettings"] == {"version": 1, "provider": "ELLKAY"}


@PROTOCOLS
async def test_a_second_connection_init_closes_the_connection(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    """The attack on the legacy protocol: a long-lived token on a tenant of one's own, then a
    second connection_init with a short-lived token on another tenant. Accepted, it swapped the
    connection's caller while the expiry watch kept the first token's expiry, so a subscription
    went on delivering the other tenant's changes after its token expired. A connection
    authenticates once, on both protocols: the second connection_init closes it with 4429."""
    tenant_id = await asyncio.to_thread(new_tenant, gateway)
    own = dev_tokens.mint(gateway.data_dir, tenants=["mine"], roles=["viewer"], ttl_s=3600)
    brief = dev_tokens.mint(gateway.data_dir, tenants=[tenant_id], roles=["viewer"], ttl_s=3)
    connection = await client.connect(gateway.ws_url, token=own)

    await connection.send(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {brief}"}}
    )
    messages, code = await messages_until_closed(connection)

    assert code == 4429, messages
    assert connection.connection.close_reason == "Too many initialisation requests"
    if client is LegacyWsClient:  # the legacy protocol's word for a refused connection first
        assert [message["type"] for message in messages] == ["connection_error"], messages
    else:
        assert messages == []


@PROTOCOLS
async def test_a_token_past_its_expiry_is_refused_at_connection_init(
    gateway: GatewayProcess, client: type[TransportWsClient]
) -> None:
    """Five seconds past its expiry, a token is still inside the verifier's clock-skew leeway,
    but a connection would outlive it from the start."""
    token, _ = short_lived_token(gateway, -5, "viewer")
    connection = await client.connect(gateway.ws_url, init=False)

    await connection.send(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    )
    messages, code = await messages_until_closed(connection)

    if client is TransportWsClient:
        assert (messages, code) == ([], 4403)
    else:
        assert [message["type"] for message in messages] == ["connection_error"]
        assert "expired" in messages[0]["payload"]["message"]


def test_the_app_itself_closes_a_message_past_the_body_limit_when_its_server_does_not(
    database_url: str, tmp_path: Path
) -> None:
    """Served by an ASGI server without a WebSocket message cap (here Starlette's in-process
    test client), the gateway's own handler refuses the message, with the same close code."""
    config = gateway_config(database_url, tmp_path, max_body_bytes=4096)
    with (
        TestClient(create_app(config)) as client,
        client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket,
    ):
        token = dev_tokens.mint(tmp_path, tenants=["*"], roles=["viewer"])
        socket.send_json({"type": "connection_init", "payload": {"token": token}})
        assert socket.receive_json() == {"type": "connection_ack"}

        socket.send_text(json.dumps({"id": "big", "type": "subscribe", "payload": {
            "query": long_subscription(1) + " #" + "x" * 8192}}))  # fmt: skip
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()

    assert closed.value.code == 1009
    assert "4096 bytes" in closed.value.reason
