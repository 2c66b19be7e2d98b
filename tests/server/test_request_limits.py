"""What a request may ask of the gateway before any of it is validated or run: JSON nested at
most 64 deep (in the body, and in a GET's variables), at most 800 tokens, and at most 250
selections, with one field selected at most 16 times at one place (and at most 16 fragment
spreads there), fragments counted wherever they are spread; and lists in its variables at most
1,000 items long, the most any argument accepts (configurationChanges' tenantIds), checked
before the variables are coerced: graphql-core coerces, and Strawberry converts, every item
before the schema's own rules count them (9,000 headers in a 256 KB body were read in full
before the settings answered TOO_MANY)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from starlette.testclient import TestClient

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.server.app import create_app
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import (
    INTEGRATION_SETTINGS,
    READ_VERSION,
    SELECT_EPIC,
    SELECT_PROVIDER,
    SELECT_PROVIDER_BY_NAME,
)


def _nested(depth: int) -> str:
    """JSON arrays ``depth`` deep, as text (json.dumps itself would recurse that deep)."""
    return "[" * depth + "]" * depth


def _body(tenant_id_json: str) -> str:
    return f'{{"query": {json.dumps(READ_VERSION)}, "variables": {{"tenantId": {tenant_id_json}}}}}'


def _assert_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert "nests deeper than 64 levels" in error["message"]


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert "RecursionError" not in caplog.text


# --- JSON depth ----------------------------------------------------------------------------


async def test_variables_nested_5000_deep_are_refused_as_json_without_a_traceback(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = _body(_nested(5000))
    response = await gateway.client.post(
        "/graphql",
        content=body,
        headers={"authorization": f"Bearer {gateway.token}", "content-type": "application/json"},
    )
    _assert_too_deep(response)
    _no_traceback(caplog)


async def test_variables_nested_5000_deep_in_a_get_query_string_are_refused_as_json(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await gateway.client.get(
        "/graphql",
        params={"query": READ_VERSION, "variables": f'{{"tenantId": {_nested(5000)}}}'},
        headers={"authorization": f"Bearer {gateway.token}"},
    )
    _assert_too_deep(response)
    _no_traceback(caplog)


@pytest.mark.parametrize(("depth", "refused"), [(64, False), (65, True)])
async def test_a_body_nested_64_deep_reaches_graphql_and_one_level_more_does_not(
    gateway: Gateway, depth: int, refused: bool
) -> None:
    # The body's object and its variables' object are two of the levels.
    body = _body(_nested(depth - 2))
    response = await gateway.client.post(
        "/graphql",
        content=body,
        headers={"authorization": f"Bearer {gateway.token}", "content-type": "application/json"},
    )
    if refused:
        _assert_too_deep(response)
        return
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]  # a list is no ID: GraphQL's own answer
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "$tenantId" in error["message"]


async def test_brackets_inside_strings_do_not_count_as_nesting(gateway: Gateway) -> None:
    tenant_id = "[" * 100 + "{" * 100
    data: dict[str, Any] = await gateway.execute(READ_VERSION, tenantId=tenant_id)
    assert data == {"integrationSettings": None}


# --- selections ----------------------------------------------------------------------------

# The wide document of the attack: 20 KB, validated in about 2 s of CPU before the selection limits.
EHR_1200_TIMES = '{ integrationSettings(tenantId: "acme") { ' + "ehr { __typename } " * 1200 + "} }"
# Each fragment spreads the next twice: 2^20 walks of the last one by the depth limiter.
FRAGMENT_CHAIN = (
    'query Chain { integrationSettings(tenantId: "acme") { ehr { ...F0 } } } '
    + " ".join(f"fragment F{n} on EpicSettings {{ ...F{n + 1} ...F{n + 1} }}" for n in range(20))
    + " fragment F20 on EpicSettings { vipFlagType }"
)
# 11 selections.
EPIC_HEADERS = """
fragment EpicHeaders on IntegrationSettings {
  headers { __typename ... on EpicHeaderSettings { epicClientId epicUserId epicUserIdType } }
  externalGateway { externalGatewayId basePathUrl name baseUrl }
}
"""


def _ehr_typename(times: int) -> str:
    return (
        "query Repeated($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { "
        + "ehr { __typename } " * times
        + "} }"
    )


def _spread_under_aliases(aliases: int) -> str:
    """EpicHeaders spread under ``aliases`` aliases of integrationSettings."""
    roots = " ".join(
        f"a{n}: integrationSettings(tenantId: $tenantId) {{ ...EpicHeaders }}"
        for n in range(aliases)
    )
    return f"query Spread($tenantId: ID!) {{ {roots} }}" + EPIC_HEADERS


def _refused(body: dict[str, Any], words: str) -> None:
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert words in error["message"], error
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}, error


@pytest.fixture
async def old_token_limit(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The token limit the issue's document was written for (5000), with the other defaults."""
    async for opened in open_gateway(gateway_config(database_url, tmp_path, max_tokens=5000)):
        yield opened


async def test_the_issues_document_is_refused_by_the_token_limit(gateway: Gateway) -> None:
    _refused(await gateway.post(EHR_1200_TIMES), "more than 800 tokens")


async def test_within_5000_tokens_the_issues_document_is_refused_for_its_repeated_field(
    old_token_limit: Gateway,
) -> None:
    _refused(
        await old_token_limit.post(EHR_1200_TIMES),
        "Field 'ehr' is selected more than 16 times at one place",
    )


async def test_a_field_may_be_selected_16_times_at_one_place_and_not_17(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    data = await gateway.execute(_ehr_typename(16), tenantId=tenant_id)
    assert data == {"integrationSettings": {"ehr": {"__typename": "EpicSettings"}}}

    body = await gateway.post(_ehr_typename(17), tenantId=tenant_id)
    _refused(body, "Field 'ehr' is selected more than 16 times at one place")


async def test_fields_merged_from_fragments_count_at_the_place_they_are_spread(
    gateway: Gateway, tenant_id: str
) -> None:
    # Three fragments of six `ehr` each: 18 at the one place they are all spread.
    fragments = " ".join(
        f"fragment Ehr{n} on IntegrationSettings {{ {'ehr { __typename } ' * 6}}}" for n in range(3)
    )
    document = (
        "query Merged($tenantId: ID!) { integrationSettings(tenantId: $tenantId) "
        f"{{ ...Ehr0 ...Ehr1 ...Ehr2 }} }} {fragments}"
    )
    _refused(await gateway.post(document, tenantId=tenant_id), "Field 'ehr' is selected")


async def test_a_fragment_counts_each_time_it_is_spread(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    # An operation (4) and 18 x (1 field + 1 spread + 11 in the fragment): 238; with 19: 251.
    data = await gateway.execute(_spread_under_aliases(18), tenantId=tenant_id)
    assert len(data) == 18

    body = await gateway.post(_spread_under_aliases(19), tenantId=tenant_id)
    _refused(body, "more than 250 selections")


async def test_a_chain_of_fragments_doubling_at_each_step_is_refused_before_validation(
    gateway: Gateway,
) -> None:
    _refused(await gateway.post(FRAGMENT_CHAIN), "More than 16 fragments are spread at one place")


async def test_the_full_settings_queries_of_every_ehr_still_run(
    gateway: Gateway, tenant_id: str
) -> None:
    saved = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    assert saved["selectEhrProvider"]["__typename"] == "SettingsSaved"
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    assert data["integrationSettings"]["provider"] == "EPIC"


# What GraphiQL asks for when it opens, with every option graphql-core knows: 246 selections,
# fragments expanded.
INTROSPECTION = get_introspection_query(
    descriptions=True, specified_by_url=True, directive_is_repeatable=True,
    schema_description=True, input_value_deprecation=True, one_of=True,
)  # fmt: skip


async def test_graphiqls_introspection_query_runs_in_development(gateway: Gateway) -> None:
    data = await gateway.execute(INTROSPECTION)
    assert data["__schema"]["queryType"] == {"name": "Query", "kind": "OBJECT"}


# --- Lists in variables ------------------------------------------------------------------

SAVE_HEADERS = """
mutation SaveHeaders($tenantId: ID!, $input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
CUSTOM_HEADERS = """
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
    data = await gateway.execute(CUSTOM_HEADERS, tenantId=tenant_id)
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
