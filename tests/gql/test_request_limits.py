"""What a request may ask of the gateway before any of it is validated or run: JSON nested at
most 64 deep (in the body, and in a GET's variables), and a bounded number of selections, with
the same field selected a bounded number of times at one place, fragments counted wherever
they are spread."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway

READ_VERSION = """
query ReadVersion($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version }
}
"""


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
