"""A GraphQL POST is application/json, and anything else is refused the same way whether or not
the response cache holds an answer for the same body."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import Gateway
from tests.documents import SELECT_EPIC

READ_PROVIDER = """
query ReadProvider($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version provider }
}
"""


async def _post(gateway: Gateway, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {gateway.token}"}
    if content_type is not None:
        headers["content-type"] = content_type
    return await gateway.client.post("/graphql", content=body, headers=headers)


def _read_body(tenant_id: str) -> bytes:
    return json.dumps({"query": READ_PROVIDER, "variables": {"tenantId": tenant_id}}).encode()


def _assert_unsupported(response: httpx.Response) -> None:
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert "application/json" in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_cached_body_sent_as_another_media_type_is_refused_as_an_uncached_one_is(
    gateway: Gateway, tenant_id: str, content_type: str | None
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    body = _read_body(tenant_id)
    for _ in range(2):  # the second answer comes from the response cache
        answered = await _post(gateway, body, "application/json")
        assert answered.status_code == 200, answered.text
        assert answered.json() == {
            "data": {"integrationSettings": {"version": 1, "provider": "EPIC"}}
        }

    cached = await _post(gateway, body, content_type)
    never_sent = await _post(gateway, _read_body(f"{tenant_id}-other"), content_type)

    _assert_unsupported(cached)
    _assert_unsupported(never_sent)
    assert cached.json() == never_sent.json()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json ;"]
)
async def test_application_json_with_parameters_or_in_other_case_is_accepted(
    gateway: Gateway, tenant_id: str, content_type: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    response = await _post(gateway, _read_body(tenant_id), content_type)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["integrationSettings"]["provider"] == "EPIC"
