"""The outbound client keeps no cookies: it is shared by every tenant's calls, so a Set-Cookie in
one call's answer (an EHR session, a load balancer's stickiness, a token endpoint's) must not go
out on a later call, whichever tenant makes it, nor follow a redirect to another path; and so
through the gateway, where tenants of one multi-tenant EHR API call the same host."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ehr_gateway.runtime.outbound import Outbound, OutboundPolicy
from tests.conftest import Gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_PROVIDER
from tests.servers import serve_on_loopback

TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest { url reachable ok failure { code message } }
  }
}
"""
# What loopback tests may call: plain http to 127.0.0.1.
LOOPBACK = OutboundPolicy(allow_insecure_http=True, allow_private=True)
CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}


def _host_setting_cookies(received: list[str | None]) -> Starlette:
    """A host that records each request's Cookie header and sets a cookie on every answer."""

    def setting_a_cookie(response: Response, request: Request) -> Response:
        received.append(request.headers.get("cookie"))
        response.set_cookie("session", f"for-{request.url.path.strip('/')}")
        return response

    async def metadata(request: Request) -> Response:
        return setting_a_cookie(JSONResponse({"resourceType": "CapabilityStatement"}), request)

    async def token(request: Request) -> Response:
        return setting_a_cookie(JSONResponse({"access_token": "t", "expires_in": 60}), request)

    async def moved(request: Request) -> Response:
        return setting_a_cookie(RedirectResponse("/metadata", status_code=302), request)

    return Starlette(
        routes=[
            Route("/metadata", metadata),
            Route("/token", token, methods=["POST"]),
            Route("/moved", moved),
        ]
    )


async def test_no_call_sends_a_cookie_an_earlier_answer_set() -> None:
    received: list[str | None] = []
    outbound = Outbound.open(LOOPBACK)
    try:
        async with serve_on_loopback(_host_setting_cookies(received)) as url:
            await outbound.get_json(f"{url}/metadata")
            status, _ = await outbound.post_form(f"{url}/token", {"grant_type": "x"})
            await outbound.get_json(f"{url}/metadata")
    finally:
        await outbound.client.aclose()

    assert status == 200
    assert received == [None, None, None]
    assert not list(outbound.client.cookies.jar)


async def test_a_redirect_hop_does_not_carry_the_cookie_the_redirect_set() -> None:
    received: list[str | None] = []
    outbound = Outbound.open(LOOPBACK)
    try:
        async with serve_on_loopback(_host_setting_cookies(received)) as url:
            body = await outbound.get_json(f"{url}/moved")
    finally:
        await outbound.client.aclose()

    assert body == {"resourceType": "CapabilityStatement"}
    assert received == [None, None]


def _ehr_of_many_tenants(received: list[str | None]) -> Starlette:
    """One EHR host serving each tenant under its own path, as a multi-tenant EHR API does: it
    records each metadata request's Cookie header and, as a load balancer's stickiness or an
    EHR's session does, sets a cookie for the whole host on every answer."""

    async def metadata(request: Request) -> Response:
        received.append(request.headers.get("cookie"))
        response = JSONResponse(CAPABILITY, media_type="application/fhir+json")
        response.set_cookie("ehr-session", f"for-{request.path_params['tenant']}")
        return response

    return Starlette(routes=[Route("/{tenant}/metadata", metadata)])


async def test_a_cookie_one_tenants_ehr_set_is_not_sent_on_another_tenants_call(
    local_gateway: Gateway,
) -> None:
    """Attack (integrator of a tenant that shares an EHR host with another tenant, as every
    tenant of one multi-tenant EHR API does): the gateway's outbound calls go through one
    process-wide client, whose cookie jar kept every Set-Cookie an EHR answered and sent it on
    every later call to that host, whichever tenant made it: the second tenant's connection
    test carried the session cookie the EHR set for the first tenant's. One tenant's session
    state was kept in memory and replayed on another tenant's behalf, where another tenant is
    never readable, writable or subscribable and an outbound call keeps nothing but its
    result."""
    received: list[str | None] = []
    first, second = (f"cookie-{n}-{uuid.uuid4().hex[:6]}" for n in range(2))
    async with serve_on_loopback(_ehr_of_many_tenants(received)) as url:
        for tenant_id, path in ((first, "first-tenant"), (second, "second-tenant")):
            await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
            connection = {"name": "EHR", "baseUrl": f"{url}/{path}", "environment": "PRODUCTION"}
            saved = await local_gateway.execute(
                CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=connection
            )
            assert saved["createExternalGateway"]["__typename"] == "SettingsSaved", saved
            tested = await local_gateway.execute(TEST_CONNECTION, tenantId=tenant_id)
            assert tested["testExternalGatewayConnection"]["ok"] is True, tested

    assert received == [None, None]
