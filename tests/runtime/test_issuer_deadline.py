"""The sign-in issuer's key set is fetched within the outbound timeout as a whole: an issuer (or
anything on its path) that drips it a part at a time, each within the timeout, is given up on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import gateway_config, open_gateway
from tests.servers import serve_on_loopback

READ_SETTINGS = """
query ReadSettings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version }
}
"""
# The gateway's outbound timeout in the issuer test, and how the issuer drips its key set: a
# part every DRIP_EVERY_S (each well within the timeout), DRIP_PARTS of them (far beyond it).
OUTBOUND_TIMEOUT_S = 1.0
DRIP_EVERY_S = 0.3
DRIP_PARTS = 30


@dataclass
class DrippingIssuer:
    """An OpenID issuer whose key set arrives a few bytes at a time, each part within any read
    timeout; notes whether it got to send the last part."""

    key: RSAKey
    url: str = ""
    drip_finished: bool = False

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url, "aud": "ehr-gateway", "sub": "staff", "iat": now, "exp": now + 300,
            "tenants": "*", "roles": ["viewer"],
        }  # fmt: skip
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json"})

        async def jwks(request: Request) -> Response:
            public = {**self.key.as_dict(private=False), "alg": "RS256", "use": "sig"}
            body = orjson.dumps({"keys": [public]})
            size = -(-len(body) // DRIP_PARTS)

            async def parts() -> AsyncIterator[bytes]:
                for start in range(0, len(body), size):
                    yield body[start : start + size]
                    await asyncio.sleep(DRIP_EVERY_S)
                self.drip_finished = True

            return StreamingResponse(parts(), media_type="application/json")

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks.json", jwks),
            ]
        )


@pytest.fixture
async def dripping_issuer() -> AsyncIterator[DrippingIssuer]:
    issuer = DrippingIssuer(RSAKey.generate_key(2048, parameters={"kid": "drip-key-1"}))
    async with serve_on_loopback(issuer.app()) as url:
        issuer.url = url
        yield issuer


async def test_a_key_set_dripped_past_the_outbound_timeout_is_given_up_on(
    database_url: str, tmp_path: Path, dripping_issuer: DrippingIssuer
) -> None:
    """Attack (a misbehaving or compromised sign-in issuer, or anything on its path): send the
    key set a few bytes at a time, each part within the outbound timeout (1 s here), 30 parts
    0.3 s apart. README ("Calls the gateway makes"): the sign-in issuer "is read by a client of
    its own with the outbound timeout". That client is a plain httpx client, whose timeout
    bounds each read, not the call: the gateway reads the whole 9 s drip, holding the key
    fetch's lock, so every request needing the keys (each one once they are 5 minutes old)
    waits behind it, without bound. The outbound client for tenants' calls bounds the whole
    call (runtime.outbound.exchange: asyncio.timeout over every hop); this one does not."""
    config = gateway_config(
        database_url, tmp_path, auth_issuer=dripping_issuer.url, allow_insecure_http=True,
        outbound_timeout_s=OUTBOUND_TIMEOUT_S,
    )  # fmt: skip
    async for gateway in open_gateway(config):
        await gateway.client.post(
            "/graphql",
            json={"query": READ_SETTINGS, "variables": {"tenantId": "acme"}},
            headers={"authorization": f"Bearer {dripping_issuer.token()}"},
            timeout=60,
        )
    assert not dripping_issuer.drip_finished, (
        f"the gateway read a key set dripped over {DRIP_PARTS * DRIP_EVERY_S:g} s to its end, "
        f"with an outbound timeout of {OUTBOUND_TIMEOUT_S:g} s"
    )
