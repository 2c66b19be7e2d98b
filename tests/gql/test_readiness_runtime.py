"""readiness means every function the saved settings turn on can work: what a function needs
beyond the spec's mandatory settings is a MISSING check whose message names the function, and the
spec's conditional requirements are warnings naming the field to fix."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway
from tests.documents import (
    CREATE_GATEWAY_CONNECTION,
    GENERATE_SIGNING_KEY,
    SELECT_PROVIDER_BY_NAME,
    VERIFY_EPIC_JWT,
)
from tests.epic_issuer import AUDIENCE, Issuer

SAVE_HEADERS = """
mutation SaveHeaders($tenantId: ID!, $input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
SAVE_FHIR = """
mutation SaveFhir($tenantId: ID!, $input: FhirSettingsInput!) {
  updateFhirSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
SAVE_EHR = """
mutation SaveEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
SAVE_OAUTH = """
mutation SaveOAuth($tenantId: ID!, $input: OAuthSettingsInput!) {
  updateOAuthSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
DISCOVER = """
mutation Discover($tenantId: ID!) {
  discoverJku(tenantId: $tenantId) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
READINESS = """
query Readiness($tenantId: ID!) {
  readiness(tenantId: $tenantId) {
    ready
    missing { block path message }
    warnings { block path code message }
  }
}
"""
CONNECTION = {"name": "Epic", "baseUrl": "https://fhir.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip
EPIC_HEADERS = {"epicClientId": "0f5c8a2e-prod", "epicUserId": "CTI-USER",
                "epicUserIdType": "External"}  # fmt: skip


async def _readiness(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    readiness: dict[str, Any] = (await gateway.execute(READINESS, tenantId=tenant_id))["readiness"]
    return readiness


async def _missing(gateway: Gateway, tenant_id: str) -> dict[tuple[str, ...], str]:
    readiness = await _readiness(gateway, tenant_id)
    return {tuple(check["path"]): check["message"] for check in readiness["missing"]}


async def _warnings(gateway: Gateway, tenant_id: str) -> list[tuple[list[str], str]]:
    readiness = await _readiness(gateway, tenant_id)
    return [(warning["path"], warning["code"]) for warning in readiness["warnings"]]


async def _epic_with_every_mandatory_setting(
    gateway: Gateway, tenant_id: str, jku_server_url: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(CREATE_GATEWAY_CONNECTION, tenantId=tenant_id, connection=CONNECTION)
    await gateway.execute(SAVE_HEADERS, tenantId=tenant_id, input={"epic": EPIC_HEADERS})
    mrn = {"mrnIdentifier": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"}
    await gateway.execute(SAVE_FHIR, tenantId=tenant_id, input={"epic": mrn})
    ehr = {"context": "Scheduling", "jkuServerUrl": jku_server_url, "jwtAudience": AUDIENCE}
    saved = await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"epic": ehr})
    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved


async def test_an_epic_tenant_without_a_jwt_issuer_is_not_ready_as_verification_refuses_jwts(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    await _epic_with_every_mandatory_setting(local_gateway, tenant_id, epic.jwks_url)
    discovered = await local_gateway.execute(DISCOVER, tenantId=tenant_id)
    assert discovered["discoverJku"]["__typename"] == "SettingsSaved", discovered
    token = epic.token(epic.keys[0])

    refused = await local_gateway.execute(VERIFY_EPIC_JWT, tenantId=tenant_id, token=token)
    missing = await _missing(local_gateway, tenant_id)

    assert refused["verifyEpicJwt"] == {"__typename": "JwtRejected", "code": "NOT_CONFIGURED"}
    assert list(missing) == [("ehr", "jwtIssuerUrl")]
    assert "pause and resume and click to call" in missing[("ehr", "jwtIssuerUrl")]

    issuer = {"epic": {"jwtIssuerUrl": epic.url}}
    await local_gateway.execute(SAVE_EHR, tenantId=tenant_id, input=issuer)

    assert (await _readiness(local_gateway, tenant_id))["ready"] is True
    verified = await local_gateway.execute(VERIFY_EPIC_JWT, tenantId=tenant_id, token=token)
    assert verified["verifyEpicJwt"]["__typename"] == "JwtVerified", verified


async def test_a_placeholder_jku_never_discovered_is_not_ready(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    """The spec's first step: any URL as the JKU Server URL, until the real one is known."""
    await _epic_with_every_mandatory_setting(
        local_gateway, tenant_id, "https://gateway.example.test/epic/placeholder"
    )
    await local_gateway.execute(
        SAVE_EHR, tenantId=tenant_id, input={"epic": {"jwtIssuerUrl": epic.url}}
    )

    missing = await _missing(local_gateway, tenant_id)

    assert list(missing) == [("jkuKeySet",)]
    assert "discoverJku" in missing[("jkuKeySet",)]


async def test_a_jku_server_url_changed_since_discovery_is_not_ready(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    """verifyEpicJwt keeps the discovered URL, so tokens naming the new one are refused."""
    await _epic_with_every_mandatory_setting(local_gateway, tenant_id, epic.jwks_url)
    issuer = {"epic": {"jwtIssuerUrl": epic.url}}
    await local_gateway.execute(SAVE_EHR, tenantId=tenant_id, input=issuer)
    await local_gateway.execute(DISCOVER, tenantId=tenant_id)
    assert (await _readiness(local_gateway, tenant_id))["ready"] is True

    moved = {"epic": {"jkuServerUrl": f"{epic.url}/plain/.well-known/jwks.json"}}
    await local_gateway.execute(SAVE_EHR, tenantId=tenant_id, input=moved)
    missing = await _missing(local_gateway, tenant_id)

    assert list(missing) == [("jkuKeySet",)]
    assert "refreshJku" in missing[("jkuKeySet",)]


async def test_an_epic_tenant_without_audience_or_external_gateway_is_not_ready(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")

    missing = await _missing(gateway, tenant_id)

    assert ("externalGateway",) in missing
    assert "base path URL" in missing[("ehr", "jwtAudience")]
    await gateway.execute(CREATE_GATEWAY_CONNECTION, tenantId=tenant_id, connection=CONNECTION)
    assert ("ehr", "jwtAudience") not in await _missing(gateway, tenant_id)


async def test_the_oauth_flag_needs_a_client_a_token_url_and_a_signing_key(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"epic": {"useOauth": True}})

    before = await _missing(gateway, tenant_id)
    oauth = {"epicClientId": "0f5c8a2e-prod", "oauthTokenUrl": "https://epic.example/oauth2/token"}
    await gateway.execute(SAVE_OAUTH, tenantId=tenant_id, input={"epic": oauth})
    half = await _missing(gateway, tenant_id)
    await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)
    after = await _missing(gateway, tenant_id)

    needed = [("oauth", "epicClientId"), ("oauth", "oauthTokenUrl"), ("oauthSigningKeys",)]
    assert all(path in before for path in needed)
    assert all("OAuth token exchange" in before[path] for path in needed)
    assert [path for path in needed if path in half] == [("oauthSigningKeys",)]
    assert not any(path in after for path in needed)


async def test_athena_sending_data_without_a_department_id_is_warned_about(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    athena = {"practiceId": "195900", "sendDataDecision": "PHONE_MESSAGE"}
    await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"athena": athena})

    before = await _warnings(gateway, tenant_id)
    department = {"departmentIdForSendInteractiveRecords": "162"}
    await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"athena": department})
    after = await _warnings(gateway, tenant_id)

    warning = (["ehr", "departmentIdForSendInteractiveRecords"], "REQUIRED_TO_SEND_DATA")
    assert warning in before
    assert warning not in after


async def test_athena_sending_missed_calls_without_a_department_id_is_warned_about(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    athena = {"practiceId": "195900", "sendDataAfterMissedCall": True}
    await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"athena": athena})

    warnings = await _warnings(gateway, tenant_id)

    assert (["ehr", "departmentIdForSendInteractiveRecords"], "REQUIRED_TO_SEND_DATA") in warnings


async def test_an_epic_client_id_in_the_headers_other_than_the_oauth_one_is_warned_about(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(SAVE_HEADERS, tenantId=tenant_id, input={"epic": EPIC_HEADERS})
    sandbox_client = {"epicClientId": "7d1e44b0-sandbox"}
    await gateway.execute(SAVE_OAUTH, tenantId=tenant_id, input={"epic": sandbox_client})

    mismatched = await _warnings(gateway, tenant_id)
    same_client = {"epicClientId": EPIC_HEADERS["epicClientId"]}
    await gateway.execute(SAVE_OAUTH, tenantId=tenant_id, input={"epic": same_client})
    matched = await _warnings(gateway, tenant_id)

    assert (["headers", "epicClientId"], "EPIC_CLIENT_ID_MISMATCH") in mismatched
    assert (["headers", "epicClientId"], "EPIC_CLIENT_ID_MISMATCH") not in matched


async def test_the_default_jku_pattern_without_an_issuer_is_warned_about(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    pattern = {"enableDefaultJkuServerUrlPattern": True}
    await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"epic": pattern})

    without_issuer = await _warnings(gateway, tenant_id)
    issuer = {"jwtIssuerUrl": "https://fhir.epic.example/interconnect-prd-oauth"}
    await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"epic": issuer})
    with_issuer = await _warnings(gateway, tenant_id)

    warning = (["ehr", "jwtIssuerUrl"], "DEFAULT_JKU_PATTERN_WITHOUT_ISSUER")
    assert warning in without_issuer
    assert warning not in with_issuer
