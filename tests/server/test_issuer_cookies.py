"""The client that reads the sign-in issuer's discovery document and keys keeps no cookies, as the
outbound client for EHR calls keeps none: a Set-Cookie in the issuer's answer (a load balancer's
stickiness, an identity provider's session) is not sent back on the next call to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import gateway_config, open_gateway
from tests.documents import READ_VERSION
from tests.issuers import SignInIssuer, serve_issuer

# What the staff token needs to read settings, and no more.
VIEWER = ["viewer"]


@dataclass
class CookieSettingIssuer(SignInIssuer):
    """An OpenID issuer that sets a cookie on every answer and records each request's Cookie
    header, by path."""

    received: list[tuple[str, str | None]] = field(default_factory=list)

    def _answer(self, request: Request, response: Response) -> Response:
        self.received.append((request.url.path, request.headers.get("cookie")))
        response.set_cookie("idp-session", f"for-{request.url.path.strip('/')}", path="/")
        return response

    async def discovery(self, request: Request) -> Response:
        return self._answer(request, await super().discovery(request))

    async def key_set(self, request: Request) -> Response:
        return self._answer(request, await super().key_set(request))


@pytest.fixture
async def issuer() -> AsyncIterator[CookieSettingIssuer]:
    async with serve_issuer(CookieSettingIssuer()) as issuer:
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
            json={"query": READ_VERSION, "variables": {"tenantId": "acme"}},
            headers={"authorization": f"Bearer {issuer.staff(VIEWER)}"},
        )

    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    # The key set is read after the discovery document answered with its cookie.
    assert issuer.received == [
        ("/.well-known/openid-configuration", None),
        ("/jwks.json", None),
    ]
