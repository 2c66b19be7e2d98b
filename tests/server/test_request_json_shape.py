"""A request's JSON must be an object where GraphQL over HTTP expects one: a POST body, a GET's
``variables`` and ``extensions``. JSON of another shape (a string, a number, null, true) is the
client's mistake, answered 400 BAD_REQUEST as a GraphQL response naming what is wrong, never
the HTTP 500 and error-level traceback it used to get when Strawberry called ``.get`` on it."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.conftest import Gateway

READ_VERSION = 'query ReadVersion { integrationSettings(tenantId: "acme") { version } }'
NOT_OBJECTS = pytest.mark.parametrize(
    "text", ['"query"', "5", "true", "[1]"], ids=["string", "number", "boolean", "list"]
)


def _headers(gateway: Gateway) -> dict[str, str]:
    return {
        "authorization": f"Bearer {gateway.token}",
        "accept": "application/graphql-response+json",
    }


def _refused(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    message: str = body["errors"][0]["message"]
    return message


@pytest.mark.parametrize("body", ['"query"', "5", "null", "true"])
async def test_a_post_body_that_is_not_an_object_is_a_bad_request(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await gateway.client.post(
        "/graphql",
        content=body,
        headers={**_headers(gateway), "content-type": "application/json"},
    )
    assert "JSON object" in _refused(response, caplog)


@NOT_OBJECTS
@pytest.mark.parametrize("name", ["variables", "extensions"])
async def test_a_get_s_variables_or_extensions_that_are_not_an_object_are_refused_by_name(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, name: str, text: str
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await gateway.client.get(
        "/graphql", params={"query": READ_VERSION, name: text}, headers=_headers(gateway)
    )
    assert f"`{name}`" in _refused(response, caplog)


async def test_a_get_s_null_variables_still_run(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/graphql",
        params={"query": "{ __typename }", "variables": "null", "extensions": "{}"},
        headers=_headers(gateway),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


WRONG_TYPES = [
    pytest.param("operationName", 5, "a string or null", id="operationName-number"),
    pytest.param("operationName", True, "a string or null", id="operationName-boolean"),
    pytest.param("operationName", {"obj": "ect"}, "a string or null", id="operationName-object"),
    pytest.param("operationName", ["ReadVersion"], "a string or null", id="operationName-list"),
    pytest.param("query", 5, "a string or null", id="query-number"),
    pytest.param("query", [READ_VERSION], "a string or null", id="query-list"),
    pytest.param("variables", 5, "an object or null", id="variables-number"),
    pytest.param("variables", "{}", "an object or null", id="variables-string"),
    pytest.param("variables", [1], "an object or null", id="variables-list"),
    pytest.param("extensions", True, "an object or null", id="extensions-boolean"),
    pytest.param("extensions", "{}", "an object or null", id="extensions-string"),
    pytest.param("extensions", [1], "an object or null", id="extensions-list"),
]


@pytest.mark.parametrize(("name", "value", "expected"), WRONG_TYPES)
async def test_a_post_s_member_of_the_wrong_type_is_refused_by_name(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, name: str, value: object, expected: str
) -> None:
    """`operationName: 5` used to be taken as the text "5" and refused as an unknown operation,
    a refusal that does not say what the client did wrong."""
    caplog.set_level(logging.DEBUG)
    body = {"query": READ_VERSION, name: value}
    response = await gateway.client.post(
        "/graphql",
        content=json.dumps(body),
        headers={**_headers(gateway), "content-type": "application/json"},
    )
    message = _refused(response, caplog)
    assert f"`{name}` must be {expected}" in message


async def test_a_post_s_null_members_still_run(gateway: Gateway) -> None:
    body = {"query": "{ __typename }", "operationName": None, "variables": None, "extensions": None}
    response = await gateway.client.post(
        "/graphql",
        content=json.dumps(body),
        headers={**_headers(gateway), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
