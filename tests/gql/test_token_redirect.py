"""testOAuthToken posts a signed client assertion to the tenant's OAuth Token URL and to no other
URL: a token endpoint answering with a redirect is reported as REDIRECT_REFUSED, and the
redirect's target never receives the assertion."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.documents import GENERATE_SIGNING_KEY, SET_UP_EPIC_OAUTH, TEST_OAUTH_TOKEN
from tests.gql.test_oauth import gateway_process as gateway_process
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback


class RedirectingEndpoint:
    """A token URL that sends the caller elsewhere, and the elsewhere that keeps what it gets."""

    def __init__(self) -> None:
        self.captured: list[bytes] = []

    async def token(self, request: Request) -> Response:
        return RedirectResponse("/collect", status_code=307)  # 307: the POST is to be repeated

    async def collect(self, request: Request) -> Response:
        self.captured.append(await request.body())
        return JSONResponse({"access_token": "x", "token_type": "Bearer", "expires_in": 60})


async def test_a_redirecting_token_endpoint_is_refused_and_gets_no_assertion_elsewhere(
    gateway_process: GatewayProcess,
) -> None:
    endpoint = RedirectingEndpoint()
    app = Starlette(
        routes=[
            Route("/token", endpoint.token, methods=["POST"]),
            Route("/collect", endpoint.collect, methods=["GET", "POST"]),
        ]
    )
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    async with serve_on_loopback(app) as url:
        await gateway_process.call(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=f"{url}/token")
        await gateway_process.call(GENERATE_SIGNING_KEY, tenantId=tenant_id)
        tested = await gateway_process.call(TEST_OAUTH_TOKEN, tenantId=tenant_id)
        result = tested["testOAuthToken"]

    assert (result["ok"], result["status"], result["error"]) == (False, 0, "REDIRECT_REFUSED")
    assert endpoint.captured == []
