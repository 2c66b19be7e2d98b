"""A request's JSON must be an object where GraphQL over HTTP expects one: a POST body, a GET's
``variables`` and ``extensions``. JSON of another shape (a string, a number, null, true) is the
client's mistake, answered 400 BAD_REQUEST as a GraphQL response naming what is wrong, never
the HTTP 500 and error-level traceback it used to get when Strawberry called ``.get`` on it."""

from __future__ import annotations

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
