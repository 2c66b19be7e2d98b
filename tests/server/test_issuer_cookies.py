"""The client that reads the sign-in issuer's discovery document and keys keeps no cookies, as the
outbound client for EHR calls keeps none: a Set-Cookie in the issuer's answer (a load balancer's
stickiness, an identity provider's session) is not sent back on the next call to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import gateway_config, open_gateway
from tests.servers import serve_on_loopback

READ_SETTINGS = """
query ReadSettings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version }
}
"""


@dataclass
class CookieSettingIssuer:
    """An OpenID issuer that sets a cookie on every answer and records each request's Cookie
    header, by path."""

    key: RSAKey
    url: str = ""
    received: list[tuple[str, str | None]] = field(default_factory=list)

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url, "aud": "ehr-gateway", "sub": "staff", "iat": now, "exp": now + 300,
            "tenants": "*", "roles": ["viewer"],
        }  # fmt: skip
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])

    def _answer(self, request: Request, response: Response) -> Response:
        self.received.append((request.url.path, request.headers.get("cookie")))
        response.set_cookie("idp-session", f"for-{request.url.path.strip('/')}", path="/")
        return response

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            answer = {"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json"}
            return self._answer(request, JSONResponse(answer))

        async def jwks(request: Request) -> Response:
            public = {**self.key.as_dict(private=False), "alg": "RS256", "use": "sig"}
            return self._answer(request, JSONResponse({"keys": [public]}))

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks.json", jwks),
            ]
        )


@pytest.fixture
async def issuer() -> AsyncIterator[CookieSettingIssuer]:
    issuer = CookieSettingIssuer(RSAKey.generate_key(2048, parameters={"kid": "issuer-key-1"}))
    async with serve_on_loopback(issuer.app()) as url:
        issuer.url = url
        yield issuer


async def test_a_cookie_the_issuer_sets_is_not_sent_back_on_the_next_call(
    database_url: str, tmp_path: Path, issuer: CookieSettingIssuer
) -> None:
    config = gateway_config(
        database_url, tmp_path, auth_issuer=issuer.url, allow_insecure_http=True
    )
    async for gateway in open_gateway(config):
        response = await gateway.client.post(
            "/graphql",
            json={"query": READ_SETTINGS, "variables": {"tenantId": "acme"}},
            headers={"authorization": f"Bearer {issuer.token()}"},
        )

    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    # The key set is read after the discovery document answered with its cookie.
    assert issuer.received == [
        ("/.well-known/openid-configuration", None),
        ("/jwks.json", None),
    ]
