"""The outbound client keeps no cookies: it is shared by every tenant's calls, so a Set-Cookie in
one call's answer (an EHR session, a load balancer's stickiness, a token endpoint's) must not go
out on a later call, whichever tenant makes it, nor follow a redirect to another path."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ehr_gateway.runtime.outbound import Outbound, OutboundPolicy
from tests.servers import serve_on_loopback

# What loopback tests may call: plain http to 127.0.0.1.
LOOPBACK = OutboundPolicy(allow_insecure_http=True, allow_private=True)


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
