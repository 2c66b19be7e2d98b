"""verifyEpicJwt as a runtime service calls it: keys only from the key set an integrator's
discovery recorded, and only while the settings still name it; a bounded number of fetches
whatever the tokens say, and only plain JWTs meant for the tenant's gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import DISCOVER_JKU, SELECT_EPIC
from tests.epic_issuer import AUDIENCE, Issuer, serve_issuer

SAVE_EPIC_SETTINGS = """
mutation SaveEpicSettings($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
SAVE_CONNECTION = """
mutation SaveConnection($tenantId: ID!, $connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: $tenantId, connection: $connection) {
    ... on SettingsSaved { settings { externalGateway { basePathUrl } } }
  }
}
"""
REFRESH = """
mutation Refresh($tenantId: ID!) { refreshJku(tenantId: $tenantId) { __typename } }
"""
VERIFY = """
query Verify($tenantId: ID!, $token: String!) {
  verifyEpicJwt(tenantId: $tenantId, token: $token) {
    __typename
    ... on JwtVerified { claims kid }
    ... on JwtRejected { code message }
  }
}
"""
CONNECTION = {"name": "Epic", "baseUrl": "https://fhir.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip


@pytest.fixture
async def attacker() -> AsyncIterator[Issuer]:
    async with serve_issuer(first_kid="mallory") as issuer:
        yield issuer


async def _discovered(
    staff: Gateway, tenant_id: str, epic: Issuer, audience: str | None = AUDIENCE
) -> str:
    """An Epic tenant whose JKU an integrator discovered from ``epic``; its base path URL."""
    await staff.execute(SELECT_EPIC, tenantId=tenant_id)
    saved = await staff.execute(SAVE_CONNECTION, tenantId=tenant_id, connection=CONNECTION)
    ehr = {"enableDefaultJkuServerUrlPattern": True, "jwtAudience": audience}
    await staff.execute(SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": ehr})
    discovered = await staff.execute(DISCOVER_JKU, tenantId=tenant_id, issuerUrl=epic.url)
    assert discovered["discoverJku"]["__typename"] == "SettingsSaved", discovered
    base_path_url: str = saved["createExternalGateway"]["settings"]["externalGateway"][
        "basePathUrl"
    ]
    return base_path_url


async def _verify(gateway: Gateway, tenant_id: str, token: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gateway.execute(VERIFY, tenantId=tenant_id, token=token))[
        "verifyEpicJwt"
    ]
    return result


async def test_keys_come_only_from_the_key_set_discovery_recorded(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    await _discovered(local_gateway, tenant_id, epic)
    # The raw setting changed without a discovery (by an integrator, who may): the key set
    # named by no setting any more is not used, nor is the one the setting names until a
    # discovery records it.
    await local_gateway.execute(
        SAVE_EPIC_SETTINGS, tenantId=tenant_id,
        input={"epic": {"enableDefaultJkuServerUrlPattern": False,
                        "jkuServerUrl": attacker.jwks_url}},
    )  # fmt: skip

    signed_elsewhere = attacker.token(attacker.keys[0], iss=epic.url)
    naming_the_setting = attacker.token(
        attacker.keys[0], iss=epic.url, header={"jku": attacker.jwks_url}
    )
    for token in (signed_elsewhere, naming_the_setting, epic.token(epic.keys[0])):
        refused = await _verify(local_gateway, tenant_id, token)
        assert (refused["__typename"], refused["code"]) == ("JwtRejected", "NOT_CONFIGURED")
        assert "refreshJku" in refused["message"]
    assert attacker.jwks_served == 0


async def test_a_token_of_the_old_key_set_is_refused_once_the_jku_server_url_changed(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    """An integrator who moves the tenant off a key set (the wrong one, or a compromised one)
    does not go on trusting it, silently, until someone thinks of running discovery again."""
    await _discovered(local_gateway, tenant_id, epic)
    token = epic.token(epic.keys[0])
    assert (await _verify(local_gateway, tenant_id, token))["__typename"] == "JwtVerified"
    integrator = local_gateway.as_caller(tenants=[tenant_id], roles=["integrator"])
    moved = {"enableDefaultJkuServerUrlPattern": False,
             "jkuServerUrl": "https://fhir.other-hospital.example/keys"}  # fmt: skip
    saved = await integrator.execute(SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": moved})
    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved

    verified = await _verify(local_gateway, tenant_id, token)

    assert (verified["__typename"], verified["code"]) == ("JwtRejected", "NOT_CONFIGURED")


async def test_with_the_default_pattern_a_new_issuer_needs_its_own_key_set(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    """The pattern derives the key set from the issuer: once the JWT Issuer URL names another
    issuer, the old issuer's keys sign nothing for it, and refreshJku discovers the new one's."""
    await _discovered(local_gateway, tenant_id, epic)
    await local_gateway.execute(
        SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": {"jwtIssuerUrl": attacker.url}}
    )
    old_keys_new_issuer = epic.token(epic.keys[0], iss=attacker.url)

    refused = await _verify(local_gateway, tenant_id, old_keys_new_issuer)
    refreshed = await local_gateway.execute(REFRESH, tenantId=tenant_id)
    after_refresh = await _verify(local_gateway, tenant_id, attacker.token(attacker.keys[0]))

    assert (refused["__typename"], refused["code"]) == ("JwtRejected", "NOT_CONFIGURED")
    assert refreshed["refreshJku"]["__typename"] == "SettingsSaved", refreshed
    assert after_refresh["__typename"] == "JwtVerified", after_refresh
    assert (await _verify(local_gateway, tenant_id, old_keys_new_issuer))["code"] == "UNKNOWN_KID"


async def test_twenty_tokens_with_unknown_kids_fetch_the_key_set_at_most_once(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    await _discovered(local_gateway, tenant_id, epic)
    served = epic.jwks_served
    strangers = [epic.rotate(kid=f"made-up-{n}") for n in range(20)]
    epic.keys = epic.keys[:1]  # keys Epic does not publish: the kids are unknown to it too

    results = await asyncio.gather(
        *(_verify(local_gateway, tenant_id, epic.token(key)) for key in strangers)
    )

    assert {result["code"] for result in results} == {"UNKNOWN_KID"}
    assert epic.jwks_served - served <= 1


async def test_a_rotated_key_is_fetched_and_then_the_tenant_waits(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    await _discovered(local_gateway, tenant_id, epic)
    served = epic.jwks_served
    rotated = epic.rotate()
    assert (await _verify(local_gateway, tenant_id, epic.token(rotated)))["kid"] == rotated.kid
    assert epic.jwks_served == served + 1

    again = epic.rotate()  # within 30 s of the refetch: not fetched again for this tenant
    assert (await _verify(local_gateway, tenant_id, epic.token(again)))["code"] == "UNKNOWN_KID"
    assert epic.jwks_served == served + 1


@pytest.mark.parametrize(
    ("claims", "header", "code"),
    [
        ({"aud": None}, {}, "MISSING_CLAIM"),
        ({"aud": "https://another-gateway.example/cti"}, {}, "WRONG_AUDIENCE"),
        ({"aud": AUDIENCE + "-evil"}, {}, "WRONG_AUDIENCE"),
        ({"aud": []}, {}, "WRONG_AUDIENCE"),
        ({}, {"typ": "at+jwt"}, "WRONG_TYPE"),
        ({}, {"typ": "application/at+jwt"}, "WRONG_TYPE"),
        ({}, {"typ": "dpop+jwt"}, "WRONG_TYPE"),
    ],
)
async def test_a_token_of_another_kind_or_for_another_audience_is_rejected(
    local_gateway: Gateway,
    epic: Issuer,
    tenant_id: str,
    claims: dict[str, Any],
    header: dict[str, Any],
    code: str,
) -> None:
    await _discovered(local_gateway, tenant_id, epic)
    token = epic.token(epic.keys[0], header=header, **claims)
    result = await _verify(local_gateway, tenant_id, token)
    assert (result["__typename"], result["code"]) == ("JwtRejected", code)


@pytest.mark.parametrize(
    ("claims", "header"),
    [
        ({}, {"typ": "JWT"}),
        ({}, {"typ": "application/jwt"}),
        ({"aud": AUDIENCE + "/pause"}, {}),
        ({"aud": ["https://another-gateway.example", AUDIENCE]}, {}),
    ],
)
async def test_a_plain_jwt_for_the_configured_audience_is_verified(
    local_gateway: Gateway,
    epic: Issuer,
    tenant_id: str,
    claims: dict[str, Any],
    header: dict[str, Any],
) -> None:
    await _discovered(local_gateway, tenant_id, epic)
    token = epic.token(epic.keys[0], header=header, **claims)
    result = await _verify(local_gateway, tenant_id, token)
    assert result["__typename"] == "JwtVerified", result


async def test_without_a_configured_audience_the_gateway_url_epic_calls_is_expected(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _discovered(local_gateway, tenant_id, epic, audience=None)

    for_the_gateway = epic.token(epic.keys[0], aud=f"{base_path_url}/click-to-call")
    for_another = epic.token(epic.keys[0], aud=AUDIENCE)

    assert (await _verify(local_gateway, tenant_id, for_the_gateway))["__typename"] == (
        "JwtVerified"
    )
    assert (await _verify(local_gateway, tenant_id, for_another))["code"] == "WRONG_AUDIENCE"


# An integrator configures an audience with nothing under it: the gateway's origin (under it
# are every tenant's endpoints on this gateway) or a name. A token meant for another tenant's
# endpoint, or for a made-up path beneath the name, is not for this one.
@pytest.mark.parametrize(
    ("audience", "other"),
    [
        ("https://gateway.example.test", "https://gateway.example.test/gateways/other/pause"),
        ("epic-gateway", "epic-gateway/pause"),
    ],
)
async def test_an_origin_or_a_name_as_the_audience_matches_only_itself(
    local_gateway: Gateway, epic: Issuer, tenant_id: str, audience: str, other: str
) -> None:
    await _discovered(local_gateway, tenant_id, epic, audience=audience)

    for_this = await _verify(local_gateway, tenant_id, epic.token(epic.keys[0], aud=audience))
    for_another = await _verify(local_gateway, tenant_id, epic.token(epic.keys[0], aud=other))

    assert for_this["__typename"] == "JwtVerified", for_this
    assert (for_another["__typename"], for_another["code"]) == ("JwtRejected", "WRONG_AUDIENCE")
