"""EHRGW_CLOCK_SKEW_S: how far a JWT's expiry may be past, or its not-before ahead of, the
gateway's clock. A hospital whose clocks drift widens it; a deployment that wants expired
tokens refused sooner narrows it. It holds for callers' bearer tokens and for Epic's JWTs
(verifyEpicJwt) alike, and a value out of range stops startup naming the variable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.server.config import ConfigError, load_config
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import CREATE_GATEWAY_CONNECTION, DISCOVER_JKU, SELECT_EPIC, VERIFY_EPIC_JWT
from tests.epic_issuer import AUDIENCE, Issuer

SKEW_S = 30
# Well inside and well past the configured skew: the checks do not hinge on a second.
WITHIN_S = SKEW_S - 10
PAST_S = SKEW_S + 10

TYPENAME = "query Typename { __typename }"
SAVE_EPIC_SETTINGS = """
mutation SaveEpicSettings($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
CONNECTION = {"name": "Epic", "baseUrl": "https://fhir.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip


@pytest.fixture
async def skewed(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway with EHRGW_CLOCK_SKEW_S=30 that may call the Epic issuer on loopback."""
    config = gateway_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True,
        clock_skew_s=SKEW_S,
    )  # fmt: skip
    async for gateway in open_gateway(config):
        yield gateway


async def status_with(gateway: Gateway, expired_s_ago: int) -> tuple[int, Any]:
    token = dev_tokens.mint(
        gateway.config.data_dir, tenants=["*"], roles=["viewer"], ttl_s=-expired_s_ago
    )
    response = await gateway.client.post(
        "/graphql",
        json={"query": TYPENAME},
        headers={"authorization": f"Bearer {token}"},
    )
    body = response.json()
    return response.status_code, body.get("data") or body["errors"][0]["message"]


async def test_a_caller_token_past_the_configured_skew_is_refused_and_within_it_accepted(
    skewed: Gateway, gateway: Gateway
) -> None:
    assert await status_with(skewed, WITHIN_S) == (200, {"__typename": "Query"})
    assert await status_with(skewed, PAST_S) == (401, "not authenticated: the token has expired")
    # The default (60 s) still accepts it: the setting is what refused it.
    assert await status_with(gateway, PAST_S) == (200, {"__typename": "Query"})


async def test_an_epic_jwt_past_the_configured_skew_is_refused_and_within_it_verified(
    skewed: Gateway, epic: Issuer, tenant_id: str
) -> None:
    await skewed.execute(SELECT_EPIC, tenantId=tenant_id)
    await skewed.execute(CREATE_GATEWAY_CONNECTION, tenantId=tenant_id, connection=CONNECTION)
    ehr = {"enableDefaultJkuServerUrlPattern": True, "jwtAudience": AUDIENCE}
    await skewed.execute(SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": ehr})
    await skewed.execute(DISCOVER_JKU, tenantId=tenant_id, issuerUrl=epic.url)

    async def verify(**claims: int) -> dict[str, Any]:
        token = epic.token(epic.keys[0], **claims)
        answer = await skewed.execute(VERIFY_EPIC_JWT, tenantId=tenant_id, token=token)
        result: dict[str, Any] = answer["verifyEpicJwt"]
        return result

    now = int(time.time())
    assert await verify(exp=now - WITHIN_S) == {"__typename": "JwtVerified"}
    assert await verify(exp=now - PAST_S) == {"__typename": "JwtRejected", "code": "EXPIRED"}
    # An Epic clock ahead of ours: its tokens' nbf is in our future.
    assert await verify(nbf=now + WITHIN_S) == {"__typename": "JwtVerified"}
    assert await verify(nbf=now + PAST_S) == {
        "__typename": "JwtRejected",
        "code": "NOT_YET_VALID",
    }


@pytest.mark.parametrize("value", ["-1", "301", "5.5", "a minute"])
def test_a_clock_skew_out_of_range_stops_startup_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="EHRGW_CLOCK_SKEW_S"):
        load_config(clock_skew_s=value)


@pytest.mark.parametrize("value", ["0", "300"])
def test_the_bounds_of_the_clock_skew_are_accepted(value: str) -> None:
    assert load_config(clock_skew_s=value).clock_skew_s == int(value)
