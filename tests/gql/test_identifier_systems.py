"""Identifier systems are FHIR `Identifier.system` values: absolute URIs, so the URL systems real
tenants use (the HL7 SSN system, Oracle Health code-set URLs) are saved like URNs, and what is
neither keeps the INVALID_URN code clients match on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER, UPDATE_FHIR
from tests.older_gateway import store_as_older_gateway

HL7_SSN = "http://hl7.org/fhir/sid/us-ssn"
CERNER_CODE_SET = "https://fhir.cerner.com/ec2458f2-1e24-41c8-b71b-0e701af7583d/codeSet/4"
EPIC_MRN_OID = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"

SAVE_IDENTIFIERS = """
mutation SaveIdentifiers($tenantId: ID!, $input: FhirSettingsInput!) {
  updateFhirSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

EPIC_SYSTEMS = {
    "ssnIdentifier": HL7_SSN,
    "mrnIdentifier": EPIC_MRN_OID,
    "practitionerExternalUrn": "https://fhir.epic.example.test/sid/practitioner",
    "locationExternalUrn": "http://open.epic.com/FHIR/StructureDefinition/location-id",
    "selfServiceIdentifier": "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7",
}
CERNER_SYSTEMS = {
    "ssnIdentifier": HL7_SSN,
    "mrnIdentifier": CERNER_CODE_SET,
    "selfServiceIdentifier": "urn:cerner:self-service",
}


async def select(gateway: Gateway, tenant_id: str, provider: str) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    assert data["selectEhrProvider"]["__typename"] == "SettingsSaved"


async def fhir_settings(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    fhir: dict[str, Any] = data["integrationSettings"]["fhir"]
    return fhir


@pytest.mark.parametrize(
    ("provider", "systems"),
    [("EPIC", EPIC_SYSTEMS), ("CERNER", CERNER_SYSTEMS)],
    ids=["epic", "cerner"],
)
async def test_url_and_urn_identifier_systems_are_saved_and_read_back(
    gateway: Gateway, tenant_id: str, provider: str, systems: dict[str, str]
) -> None:
    await select(gateway, tenant_id, provider)

    data = await gateway.execute(
        SAVE_IDENTIFIERS, tenantId=tenant_id, input={provider.lower(): systems}
    )

    assert data["updateFhirSettings"]["__typename"] == "SettingsSaved", data
    fhir = await fhir_settings(gateway, tenant_id)
    assert {name: fhir[name] for name in systems} == systems


REFUSED = [
    pytest.param("unr:oid:1.1.111", id="misspelled-urn"),
    pytest.param("1.2.840.114350.1", id="bare-oid"),
    pytest.param("/sid/patient-ssn", id="relative-reference"),
    pytest.param("terminology.example.test/sid/ssn", id="url-without-scheme"),
    pytest.param("http://hl7.org/fhir/sid/us ssn", id="space-in-path"),
    pytest.param("http://hl7.org/fhir/sid/us-ssn\u0007", id="control-character"),
    pytest.param("http://hl7.org/fhir/sid/%zz", id="broken-percent-escape"),
    pytest.param("ftp://codes.example.test/ssn", id="not-http"),
    pytest.param("http:///fhir/sid/us-ssn", id="url-without-host"),
    pytest.param("https://admin:pw@fhir.example.test/sid", id="url-with-credentials"),
    pytest.param("urn:oid:1.2.x", id="oid-not-digits"),
    pytest.param("urn:uuid:not-a-uuid", id="uuid-not-a-uuid"),
    pytest.param("urn:flag:", id="urn-without-nss"),
    # FHIR compares systems as exact strings and EHRs send urn:oid:: one saved in capitals
    # would never match a patient's identifier.
    pytest.param("URN:OID:2.16.840.1.113883.4.1", id="urn-oid-prefix-in-capitals"),
]


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.parametrize("provider", ["EPIC", "CERNER"])
async def test_what_is_not_an_absolute_uri_is_refused_as_invalid_urn(
    gateway: Gateway, tenant_id: str, provider: str, value: str
) -> None:
    await select(gateway, tenant_id, provider)
    before = await fhir_settings(gateway, tenant_id)

    data = await gateway.execute(
        SAVE_IDENTIFIERS, tenantId=tenant_id, input={provider.lower(): {"ssnIdentifier": value}}
    )

    result = data["updateFhirSettings"]
    assert result["__typename"] == "ValidationFailed"
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", provider.lower(), "ssnIdentifier"], "INVALID_URN")
    ]
    assert all(value not in error["message"] for error in result["errors"])
    assert await fhir_settings(gateway, tenant_id) == before


async def test_the_refusal_says_which_forms_are_taken(gateway: Gateway, tenant_id: str) -> None:
    await select(gateway, tenant_id, "EPIC")

    data = await gateway.execute(
        UPDATE_FHIR, tenantId=tenant_id, input={"epic": {"mrnIdentifier": "MRN"}}
    )

    (error,) = data["updateFhirSettings"]["errors"]
    assert "absolute URI" in error["message"]
    assert "urn:oid:" in error["message"]
    assert HL7_SSN in error["message"]


async def test_a_deployment_default_may_be_a_url_system(database_url: str, tmp_path: Path) -> None:
    config = gateway_config(database_url, tmp_path, default_ssn_identifier=HL7_SSN)
    async for gateway in open_gateway(config):
        tenant_id = "tenant-url-default"
        await select(gateway, tenant_id, "CERNER")

        fhir = await fhir_settings(gateway, tenant_id)

        assert fhir["ssnIdentifier"] == HL7_SSN


async def test_values_stored_under_earlier_rules_stay_readable(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """A URN the old rule took (urn:uuid: with any text, a urn:oid: prefix in capitals, also as
    a category code's system) and a coding system it took (any printable URL) are read back as
    stored: a stricter rule must not make a tenant unreadable."""
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await select(gateway, tenant_id, "CERNER")
    await store_as_older_gateway(
        database_url,
        TEST_DATABASE,
        tenant_id,
        {
            "providers.CERNER.fhir.selfServiceIdentifier": "urn:uuid:SELF-SERVICE",
            "providers.CERNER.fhir.systemForSendInteractiveRecords": "https://fhir.example.test/codes/{note}",
            "providers.CERNER.fhir.mrnIdentifier": "URN:OID:1.2.3",
            "providers.CERNER.fhir.categoryFilterArray": ["URN:OID:1.2.3|409063004"],
        },
        data_dir=tmp_path,
    )

    async for gateway in open_gateway(config):  # a fresh process: nothing cached
        fhir = await fhir_settings(gateway, tenant_id)

        assert fhir["selfServiceIdentifier"] == "urn:uuid:SELF-SERVICE"
        assert fhir["systemForSendInteractiveRecords"] == "https://fhir.example.test/codes/{note}"
        assert fhir["mrnIdentifier"] == "URN:OID:1.2.3"
        assert fhir["categoryFilterArray"] == ["URN:OID:1.2.3|409063004"]
