"""selectEhrProvider: choosing the tenant's EHR, and switching without losing settings."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER, UPDATE_EHR, UPDATE_FHIR


async def test_a_new_tenant_has_no_settings(gateway: Gateway, tenant_id: str) -> None:
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    assert data["integrationSettings"] is None


async def test_selecting_a_provider_creates_version_one_with_that_ehrs_blocks(
    gateway: Gateway, tenant_id: str
) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    result = data["selectEhrProvider"]
    assert result["__typename"] == "SettingsSaved"
    settings = result["settings"]
    assert (settings["version"], settings["provider"]) == (1, "ATHENA")
    assert settings["headers"]["__typename"] == "GenericHeaderSettings"
    assert settings["fhir"]["__typename"] == "AthenaFhirSettings"
    assert settings["ehr"]["__typename"] == "AthenaSettings"
    assert settings["ehr"]["cacheProvidersDurationTtl"] == "PT20H"
    assert settings["oauth"] is None


async def test_ellkay_has_no_fhir_block_and_cerner_has_an_empty_ehr_block(
    gateway: Gateway, tenant_id: str
) -> None:
    ellkay = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    assert ellkay["selectEhrProvider"]["settings"]["fhir"] is None
    assert ellkay["selectEhrProvider"]["settings"]["ehr"]["__typename"] == "EllkaySettings"
    cerner = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    assert cerner["selectEhrProvider"]["settings"]["ehr"] == {
        "__typename": "CernerSettings",
        "hasSettings": False,
    }


async def test_switching_provider_and_back_restores_the_earlier_settings(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(
        UPDATE_FHIR, tenantId=tenant_id, input={"epic": {"mrnIdentifier": "urn:oid:1.2.3.4"}}
    )
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"athena": {"practiceId": "42"}})

    back = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    assert back["selectEhrProvider"]["settings"]["fhir"]["mrnIdentifier"] == "urn:oid:1.2.3.4"
    athena = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    assert athena["selectEhrProvider"]["settings"]["ehr"]["practiceId"] == "42"
    assert athena["selectEhrProvider"]["settings"]["version"] == 6


async def test_selecting_the_current_provider_again_stores_no_new_version(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    again = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    assert again["selectEhrProvider"]["settings"]["version"] == 1


async def test_an_unknown_provider_is_refused_without_echoing_it(
    gateway: Gateway, tenant_id: str
) -> None:
    body = await gateway.post(SELECT_PROVIDER, tenantId=tenant_id, provider="MEDITECH-SECRET")
    assert "data" not in body or body["data"] is None
    assert "provider" in body["errors"][0]["message"]
    assert "MEDITECH-SECRET" not in str(body)
    assert (await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id))[
        "integrationSettings"
    ] is None


async def test_a_malformed_tenant_id_is_a_validation_failure(gateway: Gateway) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId="../etc/passwd", provider="EPIC")
    result = data["selectEhrProvider"]
    assert result["__typename"] == "ValidationFailed"
    assert result["errors"][0]["path"] == ["tenantId"]
    assert result["errors"][0]["code"] == "INVALID_TENANT_ID"
