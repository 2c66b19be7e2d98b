"""The token issuer's discovery document and key set are read with the depth limit client JSON
has: an issuer answering JSON nested thousands deep leaves the gateway without keys (every token
refused as unauthenticated), not with a RecursionError out of every request."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import gateway_config, open_gateway
from tests.issuers import SignInIssuer, serve_issuer

NESTED = "[" * 20_000 + "]" * 20_000
READ = '{ integrationSettings(tenantId: "acme") { version } }'


def _segment(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# A token shaped like the issuer's (its keys are never reached: they cannot be read).
TOKEN = ".".join(
    [_segment({"alg": "RS256", "kid": "k1", "typ": "JWT"}), _segment({"sub": "x"}), "c2ln"]
)


@dataclass
class Issuer(SignInIssuer):
    nested: str = "discovery"  # which answer is nested: the discovery document or the key set

    async def discovery(self, request: Request) -> Response:
        if self.nested == "discovery":
            return Response(NESTED, media_type="application/json")
        return await super().discovery(request)

    async def key_set(self, request: Request) -> Response:
        return Response(NESTED, media_type="application/json")


@pytest.fixture(params=["discovery", "jwks"])
async def issuer(request: pytest.FixtureRequest) -> AsyncIterator[Issuer]:
    async with serve_issuer(Issuer(nested=request.param)) as issuer:
        yield issuer


async def test_deeply_nested_issuer_json_is_unavailable_keys_not_an_error(
    database_url: str, tmp_path: Path, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = gateway_config(database_url, tmp_path, auth_issuer=issuer.url)
    async for gateway in open_gateway(config):
        response = await gateway.client.post(
            "/graphql", json={"query": READ}, headers={"authorization": f"Bearer {TOKEN}"}
        )

    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["message"] == (
        "not authenticated: the token issuer's keys are unavailable"
    )
    assert not [record for record in caplog.records if record.exc_info]
