"""GraphQL over HTTP as the current spec has it, checked with graphql-http's audit and Apollo
Client 4 against a real gateway process: ``application/graphql-response+json`` for clients that
accept it (a request refused before it ran is a 400 without ``data``), ``application/json`` and
200 for the others; every refusal of the transport is a GraphQL response with a code; a
mutation over GET is a 405; GET answers are kept by no cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.runtime import dev_tokens
from tests.node_clients import run_node
from tests.processes import GatewayProcess

GRAPHQL_RESPONSE = "application/graphql-response+json"
APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"
TYPENAME = "{ __typename }"
UNPARSABLE = "{ __typename"
INVALID = '{ integrationSettingz(tenantId: "acme") { version } }'
HISTORY_PAGE = """
query History($first: Int!) { settingsHistory(tenantId: "acme", first: $first) { __typename } }
"""
SELECT_EPIC = """
mutation Select { selectEhrProvider(tenantId: "acme", provider: EPIC) { __typename } }
"""
SETTINGS = 'query Settings { integrationSettings(tenantId: "acme") { version } }'
OTHER_TENANTS_SETTINGS = 'query Settings { integrationSettings(tenantId: "globex") { version } }'


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    served = GatewayProcess(Path(tmp_path_factory.mktemp("gateway")))
    try:
        yield served
    finally:
        served.stop()


def post(
    gateway: GatewayProcess, body: object, *, accept: str | None, token: str | None = None
) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {token or gateway.token}",
    }
    if accept is not None:
        headers["accept"] = accept
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{gateway.url}/graphql", content=content, headers=headers)


def test_the_graphql_over_http_audit_passes_every_check(gateway: GatewayProcess) -> None:
    results = run_node(
        "audit.mjs", env={"GATEWAY_URL": gateway.url, "GATEWAY_TOKEN": gateway.token}
    )
    print("\n".join(f"{r['id']} {r['status']}: {r['name']}" for r in results))
    assert len(results) >= 60
    assert [r for r in results if r["status"] != "ok"] == []


def test_apollo_client_reads_an_expired_token_as_a_graphql_error(
    gateway: GatewayProcess,
) -> None:
    expired = dev_tokens.mint(
        gateway.data_dir, tenants=["*"], roles=["viewer"], subject="someone", ttl_s=-3600
    )
    for token in (expired, "not-a-token"):
        found = run_node(
            "apollo_errors.mjs", SETTINGS, env={"GATEWAY_URL": gateway.url, "GATEWAY_TOKEN": token}
        )
        assert found["errorType"] == "CombinedGraphQLErrors", found
        assert [e["code"] for e in found["graphQLErrors"]] == ["UNAUTHENTICATED"]


def test_apollo_client_reads_a_variable_of_the_wrong_type_as_a_graphql_error(
    gateway: GatewayProcess,
) -> None:
    found = run_node(
        "apollo_errors.mjs", HISTORY_PAGE, json.dumps({"first": "ten"}),
        env={"GATEWAY_URL": gateway.url, "GATEWAY_TOKEN": gateway.token},
    )  # fmt: skip
    assert found["errorType"] == "CombinedGraphQLErrors", found
    assert [e["code"] for e in found["graphQLErrors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "expected Int" in found["graphQLErrors"][0]["message"]


REQUEST_ERRORS = [
    pytest.param({"query": UNPARSABLE}, id="parse"),
    pytest.param({"query": INVALID}, id="validation"),
    pytest.param({"query": HISTORY_PAGE, "variables": {"first": "ten"}}, id="variable-coercion"),
]


@pytest.mark.parametrize("body", REQUEST_ERRORS)
def test_a_request_error_is_a_400_without_data_for_graphql_response_json(
    gateway: GatewayProcess, body: dict[str, Any]
) -> None:
    response = post(gateway, body, accept=APOLLO_ACCEPT)
    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    answer = response.json()
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
@pytest.mark.parametrize("body", REQUEST_ERRORS)
def test_a_request_error_stays_a_200_with_null_data_for_legacy_json(
    gateway: GatewayProcess, body: dict[str, Any], accept: str | None
) -> None:
    response = post(gateway, body, accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_an_error_while_executing_is_a_200_with_data(gateway: GatewayProcess) -> None:
    acme_only = dev_tokens.mint(gateway.data_dir, tenants=["acme"], roles=["viewer"])
    response = post(
        gateway, {"query": OTHER_TENANTS_SETTINGS}, accept=APOLLO_ACCEPT, token=acme_only
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    answer = response.json()
    assert answer["data"] == {"integrationSettings": None}
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


TRANSPORT_REFUSALS = [
    pytest.param(
        {"content": b'{"query": "{ __typename }"}', "headers": {"content-type": "text/plain"}},
        415, "BAD_REQUEST", id="unsupported-content-type",
    ),
    pytest.param(
        {"content": json.dumps([{"query": TYPENAME}, {"query": TYPENAME}]).encode()},
        400, "BAD_REQUEST", id="batch",
    ),
    pytest.param({"content": b'{"variables": {}}'}, 400, "BAD_REQUEST", id="no-query"),
    pytest.param({"content": b'{"query": "{ __typ'}, 400, "BAD_REQUEST", id="bad-json"),
    pytest.param(
        {"content": b'{"query": "{ __typename }"}', "headers": {"authorization": "Bearer x"}},
        401, "UNAUTHENTICATED", id="bad-token",
    ),
]  # fmt: skip


@pytest.mark.parametrize("accept", [APOLLO_ACCEPT, "application/json"])
@pytest.mark.parametrize(("request_parts", "status", "code"), TRANSPORT_REFUSALS)
def test_every_transport_refusal_is_a_graphql_response_with_a_code(
    gateway: GatewayProcess, request_parts: dict[str, Any], status: int, code: str, accept: str
) -> None:
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {gateway.token}",
        "accept": accept,
        **request_parts.get("headers", {}),
    }
    response = httpx.post(
        f"{gateway.url}/graphql", content=request_parts["content"], headers=headers
    )
    assert response.status_code == status
    assert response.headers["content-type"] == accept.split(",")[0]
    answer = response.json()
    assert "data" not in answer
    assert answer["errors"][0]["extensions"]["code"] == code


def test_a_mutation_over_get_is_405_allowing_post(gateway: GatewayProcess) -> None:
    response = httpx.get(
        f"{gateway.url}/graphql",
        params={"query": SELECT_EPIC},
        headers={"authorization": f"Bearer {gateway.token}", "accept": APOLLO_ACCEPT},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    # Nothing was stored.
    assert gateway.graphql(SETTINGS)["data"] == {"integrationSettings": None}


def test_another_method_is_405_allowing_get_and_post(gateway: GatewayProcess) -> None:
    response = httpx.put(
        f"{gateway.url}/graphql",
        json={"query": TYPENAME},
        headers={"authorization": f"Bearer {gateway.token}"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def test_a_query_over_get_is_kept_by_no_cache(gateway: GatewayProcess) -> None:
    response = httpx.get(
        f"{gateway.url}/graphql",
        params={"query": SETTINGS},
        headers={"authorization": f"Bearer {gateway.token}"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"integrationSettings": None}}
    assert response.headers["cache-control"] == "private, no-store"
