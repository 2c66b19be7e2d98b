"""A list in a request's variables holds at most 1,000 items, the most any argument accepts
(configurationChanges' tenantIds): a longer one refuses the request before its variables are
coerced, as variables that do not fit refuse it, naming the variable and where the list is.
graphql-core coerces, and Strawberry converts, every item before the schema's own rules count
them: 9,000 headers (a 256 KB body) were read in full before the settings answered TOO_MANY."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.server.app import create_app
from tests.conftest import Gateway, gateway_config
from tests.documents import SELECT_PROVIDER_BY_NAME

SAVE_HEADERS = """
mutation SaveHeaders($tenantId: ID!, $input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
HEADERS = """
query Headers($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    headers { ... on GenericHeaderSettings { customHeaders { name } } }
  }
}
"""
CONFIGURATION_CHANGES = """
subscription ConfigurationChanges($tenantIds: [ID!]) {
  configurationChanges(tenantIds: $tenantIds) { tenantId version }
}
"""


def athena_headers(count: int) -> dict[str, Any]:
    return {"athena": {"customHeaders": [{"name": f"X-H{i}", "value": "v"} for i in range(count)]}}


async def editor_of(gateway: Gateway, tenant_id: str) -> Gateway:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    await editor.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    return editor


async def test_a_list_longer_than_any_argument_accepts_is_refused_before_it_is_read(
    gateway: Gateway, tenant_id: str
) -> None:
    editor = await editor_of(gateway, tenant_id)

    body = await editor.post(SAVE_HEADERS, tenantId=tenant_id, input=athena_headers(5000))

    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": "Variable '$input' has a list of 5000 items at 'athena.customHeaders': "
            "a list may hold at most 1000 items.",
            "locations": [{"line": 2, "column": 38}],
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED", "limit": 1000},
        }
    ]
    data = await gateway.execute(HEADERS, tenantId=tenant_id)
    assert data["integrationSettings"]["headers"] == {"customHeaders": []}


async def test_a_list_of_1000_items_reaches_the_settings_own_rule(
    gateway: Gateway, tenant_id: str
) -> None:
    editor = await editor_of(gateway, tenant_id)

    data = await editor.execute(SAVE_HEADERS, tenantId=tenant_id, input=athena_headers(1000))

    assert data["updateHeaderSettings"] == {
        "__typename": "ValidationFailed",
        "errors": [{"path": ["input", "athena", "customHeaders"], "code": "TOO_MANY"}],
    }


async def test_a_long_list_inside_a_list_is_found_where_it_is(
    gateway: Gateway, tenant_id: str
) -> None:
    # The value does not fit the variable's type; the list is refused before that is found.
    editor = await editor_of(gateway, tenant_id)
    headers = [{"name": "X-A", "value": "v"}, {"name": ["x"] * 1001, "value": "v"}]

    body = await editor.post(
        SAVE_HEADERS, tenantId=tenant_id, input={"athena": {"customHeaders": headers}}
    )

    assert [error["message"] for error in body["errors"]] == [
        "Variable '$input' has a list of 1001 items at 'athena.customHeaders[1].name': a list "
        "may hold at most 1000 items."
    ]


async def test_the_refusal_is_a_request_error_in_the_graphql_response_media_type(
    gateway: Gateway, tenant_id: str
) -> None:
    editor = await editor_of(gateway, tenant_id)

    response = await gateway.client.post(
        "/graphql",
        json={
            "query": SAVE_HEADERS,
            "variables": {"tenantId": tenant_id, "input": athena_headers(1001)},
        },
        headers={
            "accept": "application/graphql-response+json",
            "authorization": f"Bearer {editor.token}",
        },
    )

    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_a_subscription_naming_more_tenants_than_allowed_is_refused_before_it_starts(
    database_url: str, tmp_path: Path
) -> None:
    with (
        TestClient(create_app(gateway_config(database_url, tmp_path))) as client,
        client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket,
    ):
        token = dev_tokens.mint(tmp_path, tenants=["*"], roles=["viewer"])
        socket.send_json({"type": "connection_init", "payload": {"token": token}})
        assert socket.receive_json() == {"type": "connection_ack"}

        tenant_ids = [str(n) for n in range(20_000)]
        socket.send_json({"id": "many", "type": "subscribe", "payload": {
            "query": CONFIGURATION_CHANGES, "variables": {"tenantIds": tenant_ids}}})  # fmt: skip
        refusal = socket.receive_json()

    assert refusal["type"] == "error" and refusal["id"] == "many", refusal
    assert [error["message"] for error in refusal["payload"]] == [
        "Variable '$tenantIds' has a list of 20000 items: a list may hold at most 1000 items."
    ]
