"""An operation sent over WebSocket must say what to run: a string `query`, `variables` and
`extensions` objects or null, `operationName` a string or null. Anything else is refused by
name, with no error-level log: graphql-transport-ws closes with 4400 (its answer to an invalid
message), graphql-ws answers an `error` for the operation and keeps the connection. Before,
a legacy `start` without `query` dropped the connection with a KeyError traceback, and a `query`
that was not a string raised in the lexer (legacy: no answer at all)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.documents import SELECT_ELLKAY
from tests.processes import GatewayProcess, LegacyWsClient, TransportWsClient, started_gateway
from tests.server.test_subscription_protocol import (
    assert_nothing_alarming,
    error_messages,
    messages_until_closed,
)

TYPENAME = "query Typename { __typename }"
CONFIGURATION_CHANGED = """
subscription ConfigurationChanged($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) { tenantId version }
}
"""
MALFORMED = pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "query"),
        ({"query": 5}, "query"),
        ({"query": [TYPENAME]}, "query"),
        ({"query": TYPENAME, "variables": ["a"]}, "variables"),
        ({"query": TYPENAME, "variables": "a"}, "variables"),
        ({"query": TYPENAME, "extensions": 5}, "extensions"),
        ({"query": TYPENAME, "operationName": 5}, "operationName"),
    ],
    ids=[
        "no-query", "int-query", "list-query", "list-variables", "string-variables",
        "int-extensions", "int-operation-name",
    ],
)  # fmt: skip


@pytest.fixture(scope="module")
def shared(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with started_gateway(tmp_path_factory.mktemp("ws-operation-payloads"), database_url) as running:
        running.graphql(SELECT_ELLKAY, tenantId="acme")  # a version 1 for the replay below
        yield running


@MALFORMED
async def test_graphql_transport_ws_closes_4400_naming_the_field(
    shared: GatewayProcess, payload: dict[str, Any], field: str
) -> None:
    start = len(shared.printed())
    client = await TransportWsClient.connect(shared.ws_url, token=shared.token)

    await client.send({"id": "1", "type": "subscribe", "payload": payload})
    messages, code = await messages_until_closed(client, within=5)

    assert code == 4400, messages
    assert client.connection.close_reason is not None
    assert f"`{field}`" in client.connection.close_reason
    assert_nothing_alarming(shared.printed()[start:])


@MALFORMED
async def test_graphql_ws_answers_an_error_for_the_operation_and_stays_open(
    shared: GatewayProcess, payload: dict[str, Any], field: str
) -> None:
    start = len(shared.printed())
    client = await LegacyWsClient.connect(shared.ws_url, token=shared.token)

    await client.send({"id": "1", "type": "start", "payload": payload})
    refusal = await client.receive(within=5)
    assert refusal["type"] == "error" and refusal["id"] == "1", refusal
    assert f"`{field}`" in error_messages(refusal)[0]

    # The connection still runs the next operation.
    await client.subscribe("2", CONFIGURATION_CHANGED, tenantId="acme", sinceVersion=0)
    changed = await client.next_data("2", within=5)
    assert changed["configurationChanged"] == {"tenantId": "acme", "version": 1}
    await client.close()
    assert_nothing_alarming(shared.printed()[start:])
