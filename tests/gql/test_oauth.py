"""generateOAuthSigningKey, the published JWKS and testOAuthToken: a real gateway process asks a
real token endpoint on loopback, which checks the client assertion against the JWKS the gateway
publishes, as Epic does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Gateway
from tests.documents import SET_UP_EPIC_OAUTH, TEST_OAUTH_TOKEN
from tests.processes import GatewayProcess, started_gateway
from tests.servers import serve_on_loopback

CLIENT_ID = "epic-backend-client"
TOKEN = "issued-access-token-marker"
# A token URL nothing answers at (the discard port).
NOWHERE = "http://127.0.0.1:9/token"
GENERATE = """
mutation Generate($tenantId: ID!) {
  generateOAuthSigningKey(tenantId: $tenantId) {
    __typename
    ... on SettingsSaved { settings { oauthJwksUrl oauthSigningKeys { kid createdAt } } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""


class TokenEndpoint:
    """Epic's side: verifies the client assertion against the client's registered JWKS URL."""

    def __init__(self) -> None:
        self.url = ""
        self.jwks_url = ""
        self.seen_jti: set[str] = set()
        self.headers: list[dict[str, Any]] = []

    async def token(self, request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        assertion = form.get("client_assertion", "")
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            async with httpx.AsyncClient() as client:
                keys = KeySet.import_key_set((await client.get(self.jwks_url)).json())
            decoded = jwt.decode(assertion, keys, algorithms=["RS384"])
        except Exception:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        claims, header = decoded.claims, decoded.header
        self.headers.append(header)
        valid = (
            claims["iss"] == claims["sub"] == CLIENT_ID
            and claims["aud"] == self.url
            and 0 < claims["exp"] - claims["iat"] <= 300
            and claims["jti"] not in self.seen_jti
            and header.get("typ") == "JWT"
        )
        self.seen_jti.add(claims["jti"])
        if not valid:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse(
            {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600,
             "scope": "system/Patient.read"}
        )  # fmt: skip


@pytest.fixture(scope="module")
def gateway_process(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("oauth"),
        database_url,
        EHRGW_ALLOW_INSECURE_HTTP="true",
        EHRGW_OUTBOUND_ALLOW_PRIVATE="true",
    ) as process:
        yield process


@asynccontextmanager
async def serve_token_endpoint() -> AsyncIterator[TokenEndpoint]:
    """Epic's token endpoint on loopback, at ``endpoint.url``."""
    endpoint = TokenEndpoint()
    async with serve_on_loopback(
        Starlette(routes=[Route("/token", endpoint.token, methods=["POST"])])
    ) as url:
        endpoint.url = f"{url}/token"
        yield endpoint


@pytest.fixture
async def token_endpoint() -> AsyncIterator[TokenEndpoint]:
    async with serve_token_endpoint() as endpoint:
        yield endpoint


async def test_the_gateway_signs_a_client_assertion_epic_accepts(
    gateway_process: GatewayProcess, token_endpoint: TokenEndpoint
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    await gateway_process.call(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=token_endpoint.url)
    generated = (await gateway_process.call(GENERATE, tenantId=tenant_id))[
        "generateOAuthSigningKey"
    ]["settings"]
    token_endpoint.jwks_url = generated["oauthJwksUrl"]
    assert generated["oauthJwksUrl"] == (
        f"{gateway_process.url}/tenants/{tenant_id}/.well-known/jwks.json"
    )

    body = await asyncio.to_thread(gateway_process.graphql, TEST_OAUTH_TOKEN, tenantId=tenant_id)
    assert body["data"]["testOAuthToken"] == {
        "__typename": "OAuthTokenTest",
        "ok": True,
        "status": 200,
        "tokenType": "Bearer",
        "scope": "system/Patient.read",
        "expiresIn": 3600,
        "error": None,
        "errorDescription": None,
    }
    assert TOKEN not in str(body)
    [header] = token_endpoint.headers
    assert (header["alg"], header["kid"]) == ("RS384", generated["oauthSigningKeys"][0]["kid"])


async def test_rotation_keeps_the_previous_key_published_and_never_the_private_parts(
    gateway_process: GatewayProcess,
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    await gateway_process.call(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=NOWHERE)
    kids = []
    for _ in range(3):
        data = await gateway_process.call(GENERATE, tenantId=tenant_id)
        kids.append(data["generateOAuthSigningKey"]["settings"]["oauthSigningKeys"][0]["kid"])
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{gateway_process.url}/tenants/{tenant_id}/.well-known/jwks.json"
        )
    published = response.json()["keys"]
    assert [key["kid"] for key in published] == [kids[2], kids[1]]
    assert all(not {"d", "p", "q", "dp", "dq", "qi"} & key.keys() for key in published)
    assert all(key["alg"] == "RS384" and key["use"] == "sig" for key in published)


async def test_a_refused_exchange_and_an_unreachable_endpoint_are_reported(
    gateway_process: GatewayProcess, token_endpoint: TokenEndpoint
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    await gateway_process.call(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=token_endpoint.url)
    await gateway_process.call(GENERATE, tenantId=tenant_id)
    token_endpoint.jwks_url = f"{gateway_process.url}/tenants/other/.well-known/jwks.json"
    refused = (await gateway_process.call(TEST_OAUTH_TOKEN, tenantId=tenant_id))["testOAuthToken"]
    assert (refused["ok"], refused["status"], refused["error"]) == (False, 401, "invalid_client")

    await gateway_process.call(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=NOWHERE)
    unreachable = (await gateway_process.call(TEST_OAUTH_TOKEN, tenantId=tenant_id))[
        "testOAuthToken"
    ]
    assert (unreachable["ok"], unreachable["error"]) == (False, "UNREACHABLE")


async def test_a_token_test_needs_settings_and_a_key(gateway_process: GatewayProcess) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    await gateway_process.call(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=NOWHERE)
    data = await gateway_process.call(TEST_OAUTH_TOKEN, tenantId=tenant_id)
    assert data["testOAuthToken"] == {
        "__typename": "ValidationFailed",
        "errors": [{"path": ["signingKeys"], "code": "NO_SIGNING_KEY"}],
    }


async def test_a_signing_key_is_refused_for_an_id_that_names_no_tenant(gateway: Gateway) -> None:
    # A lone surrogate, which JSON can carry: the key must not be sealed to it.
    data = await gateway.execute(GENERATE, tenantId="acme\ud800")
    assert data["generateOAuthSigningKey"] == {
        "__typename": "ValidationFailed",
        "errors": [{"path": ["tenantId"], "code": "INVALID_TENANT_ID"}],
    }
