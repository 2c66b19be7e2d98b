"""Which operation of a document runs: the one ``operationName`` names, or the document's only
one. A document of several operations sent without ``operationName`` runs none of them and is
refused as the GraphQL spec (GetOperation) says, over POST, GET and WebSocket and when it is
registered as a persisted query: a client that bundles a mutation with the query it meant to
send (a code generator's file of documents, a pasted GraphiQL tab) must not store a version it
never named."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.gql.test_field_suggestions import Served, issuer, production
from tests.processes import LegacyWsClient, TransportWsClient

__all__ = ["issuer", "production"]  # the served gateway's fixtures

MUTATION_FIRST = """
mutation Select { selectEhrProvider(tenantId: "unnamed-op", provider: EPIC) { __typename } }
query Read { integrationSettings(tenantId: "unnamed-op") { version } }
"""
TWO_QUERIES = """
query Read { integrationSettings(tenantId: "unnamed-op") { version } }
query Tenants { tenants(first: 1) { items { tenantId } } }
"""
READ = 'query Read { integrationSettings(tenantId: "unnamed-op") { version } }'
REFUSED = "Must provide operation name if query contains multiple operations."


def _refusal(body: dict[str, Any]) -> list[tuple[str, str]]:
    assert body.get("data") is None, body
    return [(error["message"], error["extensions"]["code"]) for error in body["errors"]]


async def test_several_operations_without_an_operation_name_run_none(gateway: Gateway) -> None:
    body = await gateway.post(MUTATION_FIRST)

    assert _refusal(body) == [(REFUSED, "GRAPHQL_VALIDATION_FAILED")]
    assert (await gateway.execute(READ))["integrationSettings"] is None


async def test_the_operation_named_runs(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={"query": TWO_QUERIES, "operationName": "Tenants"},
        headers={"authorization": f"Bearer {gateway.token}"},
    )

    assert "errors" not in response.json(), response.json()
    assert list(response.json()["data"]) == ["tenants"]


async def test_several_queries_over_get_without_an_operation_name_are_refused(
    gateway: Gateway,
) -> None:
    response = await gateway.client.get(
        "/graphql",
        params={"query": TWO_QUERIES},
        headers={"authorization": f"Bearer {gateway.token}"},
    )

    assert _refusal(response.json()) == [(REFUSED, "GRAPHQL_VALIDATION_FAILED")]


async def test_several_operations_registered_as_a_persisted_query_run_none(
    gateway: Gateway,
) -> None:
    digest = hashlib.sha256(MUTATION_FIRST.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    response = await gateway.client.post(
        "/graphql",
        json={"query": MUTATION_FIRST, "extensions": extensions},
        headers={"authorization": f"Bearer {gateway.token}"},
    )

    assert _refusal(response.json()) == [(REFUSED, "GRAPHQL_VALIDATION_FAILED")]
    assert (await gateway.execute(READ))["integrationSettings"] is None


TWO_SUBSCRIPTIONS = """
subscription Changes { configurationChanged(tenantId: "unnamed-op") { version } }
subscription Others { configurationChanged(tenantId: "unnamed-op-2") { version } }
"""

# The legacy protocol (graphql-ws) carries subscriptions only; graphql-transport-ws any operation.
OVER_WEBSOCKET = [
    pytest.param(TransportWsClient, MUTATION_FIRST, id="transport-mutation-first"),
    pytest.param(TransportWsClient, TWO_SUBSCRIPTIONS, id="transport-subscriptions"),
    pytest.param(LegacyWsClient, TWO_SUBSCRIPTIONS, id="legacy-subscriptions"),
]


@pytest.mark.parametrize(("client", "document"), OVER_WEBSOCKET)
async def test_several_operations_over_websocket_without_an_operation_name_run_none(
    production: Served, client: type[TransportWsClient], document: str
) -> None:
    connection = await client.connect(production.ws_url, token=production.issuer.staff())
    try:
        await connection.subscribe("1", document)
        message = await connection.receive()
    finally:
        await connection.close()

    payload = message["payload"]
    errors = payload.get("errors", payload) if isinstance(payload, dict) else payload
    errors = errors if isinstance(errors, list) else [errors]
    assert [error["message"] for error in errors] == [REFUSED], message
    assert (await production.staff.execute(READ))["integrationSettings"] is None
