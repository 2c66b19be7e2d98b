"""resolvers/jku.py called directly: discovering the key set Epic signs with (from the JKU Server
URL, or from the issuer by the default pattern) against an issuer on loopback, and verifying
Epic's JWTs with the keys of the recorded key set only."""

from __future__ import annotations

from typing import Any

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.jwks import JwtRejected
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.jku import VerifiedJwt, discover_jku, verify_epic_jwt
from ehr_gateway.resolvers.settings import get_settings, select_provider, update_block
from tests.epic_issuer import AUDIENCE, Issuer
from tests.resolvers.helpers import failed, saved

EPIC = EhrProvider.EPIC


async def epic_tenant(context: Context, tenant_id: str, **ehr: Any) -> int:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    return await set_ehr(context, tenant_id, **ehr)


async def set_ehr(context: Context, tenant_id: str, **ehr: Any) -> int:
    return saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, ehr, None))


async def test_discovery_records_the_configured_key_set(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    version = await epic_tenant(context, tenant_id, jkuServerUrl=epic.jwks_url)

    assert saved(await discover_jku(context, tenant_id, epic.url, version)) == version + 1

    settings = await get_settings(context, tenant_id)
    assert settings is not None
    recorded = settings.providers[EPIC].jku
    assert recorded is not None and recorded.url == epic.jwks_url
    assert [key.kid for key in recorded.keys] == [epic.keys[0].kid]
    assert settings.providers[EPIC].ehr["jwtIssuerUrl"] == epic.url


async def test_the_default_pattern_finds_the_key_set_from_the_issuer(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    version = await epic_tenant(
        context, tenant_id, enableDefaultJkuServerUrlPattern=True, jwtIssuerUrl=epic.url
    )
    saved(await discover_jku(context, tenant_id, None, version))
    settings = await get_settings(context, tenant_id)
    assert settings is not None
    assert settings.providers[EPIC].ehr["jkuServerUrl"] == epic.jwks_url  # from discovery


async def test_discovery_says_what_is_missing_or_wrong(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    assert failed(await discover_jku(context, tenant_id, None, None)) == [
        (("tenantId",), "NOT_FOUND")
    ]
    version = await epic_tenant(context, tenant_id, vipFlagType="VIP")
    assert failed(await discover_jku(context, tenant_id, None, version)) == [
        (("jkuServerUrl",), "NOT_CONFIGURED")
    ]
    await set_ehr(context, tenant_id, jkuServerUrl=f"{epic.url}/empty/.well-known/jwks.json")
    assert failed(await discover_jku(context, tenant_id, None, None)) == [
        (("jkuServerUrl",), "NO_KEYS")
    ]
    epic.private_in_jwks = True
    await set_ehr(context, tenant_id, jkuServerUrl=epic.jwks_url)
    assert failed(await discover_jku(context, tenant_id, None, None)) == [
        (("jkuServerUrl",), "PRIVATE_KEY_MATERIAL")
    ]


async def test_jwts_are_verified_with_the_recorded_keys(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    version = await epic_tenant(
        context, tenant_id, jkuServerUrl=epic.jwks_url, jwtAudience=AUDIENCE
    )
    token = epic.token(epic.keys[0], sub="agent-7")
    rejected = await verify_epic_jwt(context, tenant_id, token)
    assert isinstance(rejected, JwtRejected) and rejected.code == "NOT_CONFIGURED"
    saved(await discover_jku(context, tenant_id, epic.url, version))

    verified = await verify_epic_jwt(context, tenant_id, token)

    assert isinstance(verified, VerifiedJwt)
    assert verified.claims["sub"] == "agent-7" and verified.kid == epic.keys[0].kid


async def test_a_jwt_naming_another_key_set_or_issuer_is_rejected(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    version = await epic_tenant(
        context, tenant_id, jkuServerUrl=epic.jwks_url, jwtAudience=AUDIENCE
    )
    saved(await discover_jku(context, tenant_id, epic.url, version))
    key = epic.keys[0]
    cases = {
        "JKU_MISMATCH": epic.token(key, header={"jku": "https://attacker.example/jwks"}),
        "MALFORMED": "not.a.jwt",
        "WRONG_TYPE": epic.token(key, header={"typ": "at+jwt"}),
    }
    for code, token in cases.items():
        rejected = await verify_epic_jwt(context, tenant_id, token)
        assert isinstance(rejected, JwtRejected) and rejected.code == code, (code, rejected)
    other_issuer = await verify_epic_jwt(
        context, tenant_id, epic.token(key, iss="https://attacker.example")
    )
    assert isinstance(other_issuer, JwtRejected)
    wrong_audience = await verify_epic_jwt(
        context, tenant_id, epic.token(key, aud="https://elsewhere.example")
    )
    assert isinstance(wrong_audience, JwtRejected)


async def test_a_jwt_for_a_tenant_that_is_not_epic_is_rejected(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.CERNER, 0))
    rejected = await verify_epic_jwt(context, tenant_id, epic.token(epic.keys[0]))
    assert isinstance(rejected, JwtRejected) and rejected.code == "NOT_EPIC"
