"""testOAuthToken posts a signed client assertion to the tenant's OAuth Token URL and to no other
URL: a token endpoint answering with a redirect is reported as REDIRECT_REFUSED, and the
redirect's target never receives the assertion."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.gql.test_oauth import GENERATE, SETUP, TEST_TOKEN
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback


@pytest.fixture(scope="module")
def gateway_process(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        tmp_path_factory.mktemp("token_redirect"),
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"token_redirect_{uuid.uuid4().hex[:8]}",
        EHRGW_ALLOW_INSECURE_HTTP="true",
        EHRGW_OUTBOUND_ALLOW_PRIVATE="true",
    )
    yield process
    process.stop()


class RedirectingEndpoint:
    """A token URL that sends the caller elsewhere, and the elsewhere that keeps what it gets."""

    def __init__(self) -> None:
        self.captured: list[bytes] = []

    async def token(self, request: Request) -> Response:
        return RedirectResponse("/collect", status_code=307)  # 307: the POST is to be repeated

    async def collect(self, request: Request) -> Response:
        self.captured.append(await request.body())
        return JSONResponse({"access_token": "x", "token_type": "Bearer", "expires_in": 60})


async def _run(gateway: GatewayProcess, document: str, **variables: Any) -> dict[str, Any]:
    body = await asyncio.to_thread(gateway.graphql, document, **variables)
    data: dict[str, Any] = body["data"]
    return data


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
        await _run(gateway_process, SETUP, tenantId=tenant_id, tokenUrl=f"{url}/token")
        await _run(gateway_process, GENERATE, tenantId=tenant_id)
        result = (await _run(gateway_process, TEST_TOKEN, tenantId=tenant_id))["testOAuthToken"]

    assert (result["ok"], result["status"], result["error"]) == (False, 0, "REDIRECT_REFUSED")
    assert endpoint.captured == []
