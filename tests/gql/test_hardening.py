"""What every request passes before it is executed: document limits (depth, aliases, tokens), the
body size limit, introspection and GraphiQL outside development, masked internal errors, CORS,
request ids and authentication."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import GraphQLError

from ehr_gateway.gql.schema import gateway_schema
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import SELECT_EPIC
from tests.processes import staff_token

READ_VERSION = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version provider }
}
"""
# Depth 3 (integrationSettings 0, ehr 1, soapPassword 2, isSet 3): at a limit of 3.
AT_THE_LIMIT = """
query AtTheLimit($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version ehr { ... on EpicSettings { soapPassword { isSet } } }
  }
}
"""
# Depth 4 (selectEhrProvider 0, settings 1, ehr 2, soapPassword 3, isSet 4): past a limit of 3.
DEEP_MUTATION = """
mutation Deep($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) {
    ... on SettingsSaved {
      settings { ehr { ... on EpicSettings { soapPassword { isSet } } } }
    }
  }
}
"""
INTROSPECT = "{ __schema { types { name } } }"
INTROSPECT_TYPE = '{ __type(name: "Query") { name } }'
TYPENAME = "{ __typename }"

ERROR_ID = re.compile(r"[0-9a-f]{12}")


@pytest.fixture
async def limited(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway with small document limits, so that documents past them stay short."""
    config = gateway_config(
        database_url, tmp_path, max_query_depth=3, max_aliases=2, max_tokens=100,
        max_repeated_selections=100,  # the token test repeats one field
    )  # fmt: skip
    async for opened in open_gateway(config):
        yield opened


def _aliases(count: int) -> str:
    fields = " ".join(f"a{n}: integrationSettings(tenantId: $tenantId) {{ version }}"
                      for n in range(count))  # fmt: skip
    return f"query Aliased($tenantId: ID!) {{ {fields} }}"


def _tokens(fields: int) -> str:
    # 20 tokens around the selection, then one per field.
    return (
        "query Long($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { "
        + ("version " * fields)
        + "} }"
    )


def _refused(body: dict[str, Any], words: str) -> None:
    assert body.get("data") is None, body
    messages = [error["message"] for error in body["errors"]]
    assert any(words in message for message in messages), messages
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert codes == {"GRAPHQL_VALIDATION_FAILED"}, body


def _bearer(gateway: Gateway) -> dict[str, str]:
    return {"authorization": f"Bearer {gateway.token}", "content-type": "application/json"}


# --- document limits -------------------------------------------------------------------------


async def test_a_document_within_the_depth_limit_runs(limited: Gateway, tenant_id: str) -> None:
    await limited.execute(SELECT_EPIC, tenantId=tenant_id)
    data = await limited.execute(AT_THE_LIMIT, tenantId=tenant_id)
    assert data["integrationSettings"] == {"version": 1, "ehr": {"soapPassword": {"isSet": False}}}


async def test_a_document_past_the_depth_limit_is_refused_and_nothing_runs(
    limited: Gateway, tenant_id: str
) -> None:
    body = await limited.post(DEEP_MUTATION, tenantId=tenant_id)

    _refused(body, "exceeds maximum operation depth of 3")
    # The mutation would have created the tenant's settings: it never ran.
    assert (await limited.execute(READ_VERSION, tenantId=tenant_id)) == {
        "integrationSettings": None
    }


async def test_the_same_deep_document_runs_under_the_default_limit(
    gateway: Gateway, tenant_id: str
) -> None:
    data = await gateway.execute(DEEP_MUTATION, tenantId=tenant_id)
    assert data["selectEhrProvider"] == {"settings": {"ehr": {"soapPassword": {"isSet": False}}}}


async def test_aliases_up_to_the_limit_run_and_more_are_refused(
    limited: Gateway, tenant_id: str
) -> None:
    assert await limited.execute(_aliases(2), tenantId=tenant_id) == {"a0": None, "a1": None}

    _refused(await limited.post(_aliases(3), tenantId=tenant_id), "aliases found. Allowed: 2")


async def test_a_document_with_more_tokens_than_the_limit_is_refused(
    limited: Gateway, tenant_id: str
) -> None:
    assert await limited.execute(_tokens(80), tenantId=tenant_id) == {"integrationSettings": None}

    _refused(await limited.post(_tokens(81), tenantId=tenant_id), "more than 100 tokens")


# --- body size -------------------------------------------------------------------------------


@pytest.fixture
async def small_bodies(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in open_gateway(gateway_config(database_url, tmp_path, max_body_bytes=1024)):
        yield opened


def _body(size: int) -> bytes:
    """A valid GraphQL request body of exactly ``size`` bytes (padded with JSON whitespace)."""
    core = json.dumps({"query": TYPENAME}).encode()
    assert len(core) <= size
    return core + b" " * (size - len(core))


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "1024 bytes" in body["errors"][0]["message"]


async def test_a_body_at_the_limit_is_accepted(small_bodies: Gateway) -> None:
    response = await small_bodies.client.post(
        "/graphql", content=_body(1024), headers=_bearer(small_bodies)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_body_past_the_limit_is_refused_with_413(small_bodies: Gateway) -> None:
    response = await small_bodies.client.post(
        "/graphql", content=_body(1025), headers=_bearer(small_bodies)
    )
    _assert_too_large(response)


async def test_a_chunked_body_past_the_limit_is_refused_with_413(small_bodies: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = _body(3000)
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    response = await small_bodies.client.post(
        "/graphql", content=chunks(), headers=_bearer(small_bodies)
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    _assert_too_large(response)


async def test_a_small_chunked_body_is_accepted(small_bodies: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = _body(600)
        yield body[:300]
        yield body[300:]

    response = await small_bodies.client.post(
        "/graphql", content=chunks(), headers=_bearer(small_bodies)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


# --- introspection and GraphiQL --------------------------------------------------------------


@pytest.fixture
async def closed(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in open_gateway(gateway_config(database_url, tmp_path, introspection=False)):
        yield opened


@pytest.mark.parametrize("document", [INTROSPECT, INTROSPECT_TYPE])
async def test_introspection_is_refused_when_turned_off(closed: Gateway, document: str) -> None:
    _refused(await closed.post(document), "introspection has been disabled")


async def test_typename_still_works_without_introspection(closed: Gateway) -> None:
    assert await closed.execute(TYPENAME) == {"__typename": "Query"}


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "with-token"])
async def test_graphiql_is_not_served_when_introspection_is_off(
    closed: Gateway, authenticated: bool
) -> None:
    headers = {"accept": "text/html"}
    if authenticated:
        headers["authorization"] = f"Bearer {closed.token}"
    response = await closed.client.get("/graphql", headers=headers)
    assert response.status_code != 200, response.text
    assert "text/html" not in response.headers.get("content-type", "")
    assert "graphiql" not in response.text.lower()


async def test_introspection_works_in_development_by_default(gateway: Gateway) -> None:
    data = await gateway.execute(INTROSPECT)
    names = {entry["name"] for entry in data["__schema"]["types"]}
    assert {"Query", "Mutation", "IntegrationSettings"} <= names


async def test_graphiql_is_served_in_development_without_a_token(gateway: Gateway) -> None:
    response = await gateway.client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize(
    "document",
    [INTROSPECT, '{ integrationSettings(tenantId: "someone") { provider } }'],
    ids=["introspection", "data"],
)
async def test_only_the_graphiql_page_itself_is_served_without_a_token(
    gateway: Gateway, document: str
) -> None:
    """The page carries no data, so it needs no token; a GET that carries a query is an API
    request like any other, whatever its Accept header says, and is refused at the door."""
    response = await gateway.client.get(
        "/graphql", params={"query": document}, headers={"accept": "text/html"}
    )
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.fixture
async def issuer_with_introspection(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """Production (an issuer) with introspection turned on for its authenticated callers."""
    config = gateway_config(
        database_url, tmp_path, auth_issuer="https://issuer.example.test", introspection=True
    )
    async for opened in open_gateway(config):
        yield opened


async def test_an_issuer_deployment_with_introspection_keeps_the_schema_from_anonymous_gets(
    issuer_with_introspection: Gateway,
) -> None:
    client = issuer_with_introspection.client
    anonymous = await client.post("/graphql", json={"query": INTROSPECT})
    assert anonymous.status_code == 401, anonymous.text

    response = await client.get(
        "/graphql", params={"query": INTROSPECT}, headers={"accept": "text/html"}
    )
    assert response.status_code == 401, response.text[:200]
    assert "__schema" not in response.text


# --- masked internal errors ------------------------------------------------------------------


def test_an_unexpected_error_is_masked_with_an_id_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="ehr_gateway.graphql")
    error = GraphQLError(
        "boom secret-detail", path=["integrationSettings"],
        original_error=RuntimeError("secret-detail"),
    )  # fmt: skip

    gateway_schema().process_errors([error])

    match = re.fullmatch(r"internal error \(error id ([0-9a-f]{12})\)", error.message)
    assert match, error.message
    error_id = match.group(1)
    assert "secret-detail" not in error.message
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
    assert "secret-detail" not in json.dumps(error.formatted)
    records = [record for record in caplog.records if record.name == "ehr_gateway.graphql"]
    assert any(error_id in record.getMessage() for record in records), caplog.text
    # The log (not the client) keeps the detail.
    assert "secret-detail" in caplog.text


def test_expected_refusals_and_request_errors_are_not_masked() -> None:
    refusal = GraphQLError(
        "forbidden: settings:read", path=["integrationSettings"],
        extensions={"code": "FORBIDDEN"},
    )  # fmt: skip
    syntax = GraphQLError("Syntax Error: Unexpected Name 'x'.")

    gateway_schema().process_errors([refusal, syntax])

    assert refusal.message == "forbidden: settings:read"
    assert refusal.extensions == {"code": "FORBIDDEN"}
    assert syntax.message.startswith("Syntax Error")
    assert not ERROR_ID.search(syntax.message)


# --- CORS ------------------------------------------------------------------------------------

ADMIN = "https://admin.example.test"
EVIL = "https://evil.example.test"


@pytest.fixture
async def cors(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in open_gateway(gateway_config(database_url, tmp_path, cors_origins=ADMIN)):
        yield opened


async def _preflight(gateway: Gateway, origin: str) -> httpx.Response:
    return await gateway.client.options(
        "/graphql",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


async def test_a_preflight_from_a_configured_origin_is_allowed(cors: Gateway) -> None:
    response = await _preflight(cors, ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ADMIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers


async def test_a_preflight_from_another_origin_is_not_allowed(cors: Gateway) -> None:
    response = await _preflight(cors, EVIL)
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code != 200


async def test_a_cross_origin_post_exposes_the_request_id(cors: Gateway) -> None:
    response = await cors.client.post(
        "/graphql", json={"query": TYPENAME}, headers={**_bearer(cors), "origin": ADMIN}
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ADMIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()

    other = await cors.client.post(
        "/graphql", json={"query": TYPENAME}, headers={**_bearer(cors), "origin": EVIL}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_no_origin_is_allowed_by_default(gateway: Gateway) -> None:
    response = await _preflight(gateway, ADMIN)
    assert "access-control-allow-origin" not in response.headers


# --- X-Request-Id ----------------------------------------------------------------------------


async def _request_id(gateway: Gateway, sent: str | None) -> str:
    headers = _bearer(gateway)
    if sent is not None:
        headers["x-request-id"] = sent
    response = await gateway.client.post("/graphql", json={"query": TYPENAME}, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


async def test_every_response_carries_a_request_id(gateway: Gateway) -> None:
    first = await _request_id(gateway, None)
    second = await _request_id(gateway, None)
    assert first and second and first != second


async def test_a_sane_request_id_is_echoed(gateway: Gateway) -> None:
    assert await _request_id(gateway, "req-2024.06_abc") == "req-2024.06_abc"
    assert await _request_id(gateway, "x" * 64) == "x" * 64


@pytest.mark.parametrize(
    "insane", ["x" * 200, "has spaces in it", "semi;colon", "new\tline"],
    ids=["too-long", "spaces", "semicolon", "tab"],
)  # fmt: skip
async def test_an_insane_request_id_is_replaced(gateway: Gateway, insane: str) -> None:
    echoed = await _request_id(gateway, insane)
    assert echoed and echoed != insane
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", echoed)


async def test_refused_requests_carry_a_request_id_too(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/graphql", json={"query": TYPENAME}, headers={"x-request-id": "refused-1"}
    )
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "refused-1"


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic abc", "Bearer", "Bearer garbage", "Bearer a.b.c", "Bearer " + "x" * 20_000],
    ids=["none", "empty", "basic", "bearer-without-token", "garbage", "three-parts", "huge"],
)
async def test_a_request_without_a_valid_bearer_token_is_401(
    gateway: Gateway, authorization: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    response = await gateway.client.post(
        "/graphql", content=json.dumps({"query": TYPENAME}), headers=headers
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body


async def test_a_token_of_another_gateway_is_401(gateway: Gateway, tmp_path: Path) -> None:
    foreign = staff_token(tmp_path / "elsewhere")
    response = await gateway.client.post(
        "/graphql", json={"query": TYPENAME}, headers={"authorization": f"Bearer {foreign}"}
    )
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_get_query_needs_a_token_too(gateway: Gateway) -> None:
    response = await gateway.client.get("/graphql", params={"query": TYPENAME})
    assert response.status_code == 401, response.text

    response = await gateway.client.get(
        "/graphql", params={"query": TYPENAME},
        headers={"authorization": f"Bearer {gateway.token}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
