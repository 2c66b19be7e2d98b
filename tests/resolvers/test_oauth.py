"""resolvers/oauth.py called directly: the Epic OAuth client's signing keys, the JWK Set the
gateway publishes for them, and the token exchange against a token endpoint on loopback (its
``test_token`` under another name, which pytest would take for a test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import parse_qsl

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.oauth import TokenOutcome
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.oauth import KEYS_KEPT, generate_signing_key, jwks_url, published_jwks
from ehr_gateway.resolvers.oauth import exchange_token as token_exchange
from ehr_gateway.resolvers.settings import get_settings, select_provider, update_block
from tests.resolvers.conftest import PUBLIC_BASE_URL
from tests.resolvers.helpers import failed, saved
from tests.servers import serve_on_loopback

CLIENT_ID = "epic-client-1"


async def test_signing_keys_are_epics(context: Context, tenant_id: str) -> None:
    assert failed(await generate_signing_key(context, tenant_id, None)) == [
        (("tenantId",), "NOT_FOUND")
    ]
    saved(await select_provider(context, tenant_id, EhrProvider.ATHENA, 0))
    assert failed(await generate_signing_key(context, tenant_id, 1)) == [
        (("provider",), "NOT_EPIC")
    ]


async def test_a_new_key_is_published_beside_the_previous_one_only(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.EPIC, 0))
    assert await published_jwks(context, tenant_id) is None
    kids = []
    for version in range(1, 4):
        saved(await generate_signing_key(context, tenant_id, version))
        jwks = await published_jwks(context, tenant_id)
        assert jwks is not None
        kids.append([key["kid"] for key in jwks["keys"]])
    assert len(kids[-1]) == KEYS_KEPT == 2
    assert kids[2] == [kids[2][0], kids[1][0]]  # newest first, then the one before it
    published = await published_jwks(context, tenant_id)
    assert published is not None
    assert all(not {"d", "p", "q"} & key.keys() for key in published["keys"])
    settings = await get_settings(context, tenant_id)
    assert settings is not None
    private = settings.providers[EhrProvider.EPIC].signing_keys[0].private_jwk
    assert private.is_set and private.ciphertext and '"d"' not in private.ciphertext
    assert jwks_url(context, tenant_id) == (
        f"{PUBLIC_BASE_URL}/tenants/{tenant_id}/.well-known/jwks.json"
    )


def token_endpoint(jwks: dict[str, Any], received: list[dict[str, Any]]) -> Starlette:
    """Epic's token endpoint: grants a token to a client assertion the published keys verify."""
    keys = KeySet.import_key_set(cast(KeySetSerialization, jwks))

    async def token(request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, which is no dependency.
        form = dict(parse_qsl((await request.body()).decode()))
        try:
            assertion = jwt.decode(form["client_assertion"], keys, algorithms=["RS384"])
        except (JoseError, KeyError, ValueError):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        received.append({**form, "claims": assertion.claims})
        return JSONResponse(
            {"access_token": "loopback-token", "token_type": "Bearer", "expires_in": 300}
        )

    return Starlette(routes=[Route("/oauth2/token", token, methods=["POST"])])


@pytest.fixture
async def epic_with_key(context: Context, tenant_id: str) -> AsyncIterator[list[dict[str, Any]]]:
    """An Epic tenant with a signing key and Epic's token endpoint on loopback."""
    saved(await select_provider(context, tenant_id, EhrProvider.EPIC, 0))
    saved(await generate_signing_key(context, tenant_id, 1))
    jwks = await published_jwks(context, tenant_id)
    assert jwks is not None
    received: list[dict[str, Any]] = []
    async with serve_on_loopback(token_endpoint(jwks, received)) as url:
        patch = {"epicClientId": CLIENT_ID, "oauthTokenUrl": f"{url}/oauth2/token"}
        oauth = SettingsBlock.OAUTH
        saved(await update_block(context, tenant_id, oauth, EhrProvider.EPIC, patch, 2))
        yield received


async def test_the_token_exchange_signs_an_assertion_epic_verifies(
    context: Context, tenant_id: str, epic_with_key: list[dict[str, Any]]
) -> None:
    outcome = await token_exchange(context, tenant_id)

    assert outcome == TokenOutcome(ok=True, status=200, token_type="Bearer", expires_in=300)
    (request,) = epic_with_key
    assert request["grant_type"] == "client_credentials"
    claims = request["claims"]
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    settings = await get_settings(context, tenant_id)
    assert settings is not None
    assert claims["aud"] == settings.providers[EhrProvider.EPIC].oauth["oauthTokenUrl"]


async def test_the_exchange_needs_the_client_and_token_url(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.EPIC, 0))
    assert failed(await token_exchange(context, tenant_id)) == [(("oauth",), "NOT_CONFIGURED")]
    patch = {"epicClientId": CLIENT_ID, "oauthTokenUrl": "https://auth.example.test/token"}
    saved(await update_block(context, tenant_id, SettingsBlock.OAUTH, EhrProvider.EPIC, patch, 1))
    assert failed(await token_exchange(context, tenant_id)) == [
        (("signingKeys",), "NO_SIGNING_KEY")
    ]
