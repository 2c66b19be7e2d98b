"""A GraphQL request carrying two Authorization headers names two callers, and readers disagree
on which counts (the request gate takes the last, Starlette's Headers the first): it is refused
with 400 before either is verified."""

from __future__ import annotations

import json

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER

BAD_REQUEST = {
    "errors": [
        {
            "message": "a request carries at most one Authorization header",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
}


async def test_two_authorization_headers_are_refused_before_either_is_used(
    gateway: Gateway,
) -> None:
    viewer = gateway.as_caller(tenants=["acme"], roles=["viewer"]).token
    body = json.dumps(
        {"query": SELECT_PROVIDER, "variables": {"tenantId": "acme", "provider": "EPIC"}}
    )
    for first, last in ((viewer, gateway.token), (gateway.token, viewer)):
        response = await gateway.client.post(
            "/graphql",
            content=body,
            headers=[
                ("content-type", "application/json"),
                ("authorization", f"Bearer {first}"),
                ("authorization", f"Bearer {last}"),
            ],
        )
        assert (response.status_code, response.json()) == (400, BAD_REQUEST)
    settings = await gateway.client.post(
        "/graphql",
        json={"query": 'query { integrationSettings(tenantId: "acme") { version } }'},
        headers={"authorization": f"Bearer {gateway.token}"},
    )
    assert settings.json()["data"]["integrationSettings"] is None  # nothing was stored


async def test_one_authorization_header_is_served(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={"query": "query { __typename }"},
        headers={"authorization": f"Bearer {gateway.token}", "x-padding": "1"},
    )
    assert (response.status_code, response.json()) == (200, {"data": {"__typename": "Query"}})
