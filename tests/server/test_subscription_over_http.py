"""Subscriptions are served over WebSocket only. Sent as an HTTP request (POST, or GET) one is
refused before it runs with a JSON 400 naming where subscriptions are served, instead of being
executed as a query and failing as an internal error with a logged traceback."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import Gateway

CONFIGURATION_CHANGED = 'subscription { configurationChanged(tenantId: "acme") { version } }'
REFUSAL = {
    "errors": [
        {
            "message": "subscriptions are served over WebSocket on /graphql, not over HTTP",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
}


async def test_a_subscription_posted_over_http_is_a_json_400(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"authorization": f"Bearer {gateway.token}"}

    posted = await gateway.client.post(
        "/graphql", json={"query": CONFIGURATION_CHANGED}, headers=headers
    )
    got = await gateway.client.get(
        "/graphql", params={"query": CONFIGURATION_CHANGED}, headers=headers
    )

    for response in (posted, got):
        assert response.status_code == 400, response.text
        assert response.json() == REFUSAL
    assert not [record for record in caplog.records if record.exc_info]
    assert "INTERNAL_SERVER_ERROR" not in caplog.text


async def test_queries_and_mutations_still_run_over_http(gateway: Gateway) -> None:
    data = await gateway.execute("{ __typename }")
    assert data == {"__typename": "Query"}
