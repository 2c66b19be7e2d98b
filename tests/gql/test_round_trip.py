"""Round trips: every block of every EHR is saved with non-default values and read back as sent;
partial updates keep omitted fields and reset nulled ones; the external gateway id is stable."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import (
    CREATE_EXTERNAL_GATEWAY,
    INTEGRATION_SETTINGS,
    SELECT_PROVIDER,
    UPDATE_EHR,
    UPDATE_FHIR,
    UPDATE_HEADERS,
    UPDATE_OAUTH,
    UPDATE_PATIENT_RESTRICTION,
)

SOAP_PASSWORD = "Pl41ntext-SOAP-pw!"
US_SSN_OID = "urn:oid:2.16.840.1.113883.4.1"
GATEWAY_ID = re.compile(r"^[A-Za-z0-9_-]{16,}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
CONNECTION = {
    "name": "Production EHR",
    "baseUrl": "https://fhir.ehr.example.test/api/FHIR/R4",
    "environment": "PRODUCTION",
    "description": "The customer's production FHIR endpoint.",
}

EPIC_HEADERS = {
    "epicClientId": "client-0a1b2c",
    "epicUserId": "CCUSER",
    "epicUserIdType": "Internal",
}
EPIC_FHIR = {
    "urlPrefix": "/api/FHIR/R4",
    "ssnIdentifier": "urn:oid:2.16.840.1.113883.4.1.99",
    "mrnIdentifier": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
    "practitionerExternalUrn": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.1",
    "locationExternalUrn": "urn:oid:1.2.840.114350.1.13.0.1.7.2.686980",
    "selfServiceIdentifier": "urn:epic:self-service",
    "legalSexSearch": True,
    "useBatch": True,
    "dayRangeForTemporalSearches": 14,
    "useGtInDateRange": True,
    "useLtInDateRange": True,
    "useTelecom": True,
    "usePatientIdAsIdentifier": True,
    "categoryFilterArray": ["409063004", "386053000"],
    "directRescheduleUseCase": True,
}
EPIC_SETTINGS = {
    "vipFlagType": "VIP",
    "context": "Scheduling",
    "jkuServerUrl": "https://gateway.example.test/gateways/jwks.json",
    "enableDefaultJkuServerUrlPattern": True,
    "jwtIssuerUrl": "http://issuer.example.test/oauth2",
    "epicUserId": "CONTACTCENTER",
    "epicUserIdType": "Internal",
    "providerIdType": "NPI",
    "locationIdType": "DEPID",
    "visitIdType": "CSN",
    "soapUsername": "soap-refills",
    "soapPassword": SOAP_PASSWORD,
    "useOauth": True,
    "oauthBasePath": "/oauth2",
    "receiveCommunicationVersion": "V3",
    "phoneSystemId": "PHONE-1",
    "phoneSystemType": "CTI",
    "fallbackEntryDepartmentIdForServiceRecord": "101",
    "fallbackEntryDepartmentTypeForServiceRecord": "Internal",
    "fallbackAgentUserIdForServiceRecord": "AGENT-1",
    "fallbackAgentUserTypeForServiceRecord": "External",
    "sourceTypeForServiceRecord": "Phone",
    "sourceNameForServiceRecord": "Contact center",
    "sourceEntityIdForServiceRecord": "42",
    "sourceEntityTypeForServiceRecord": "Department",
    "fallbackPatientIdTypeForServiceRecord": "MRN",
    "epicMaximumSlotSearchDateRangeInDays": 45,
    "maxAllowedSlotSearchDateRangeDays": 120,
    "quickCrmTopicMapping": [
        {"name": "Prescription refill", "value": "101"},
        {"name": "Billing question", "value": "202"},
    ],
    "sendRecordingUrl": True,
    "sendDataAfterMissedCall": True,
}
EPIC_OAUTH = {
    "epicClientId": "oauth-client-9f8e",
    "oauthTokenUrl": "https://fhir.epic.example.test/oauth2/token",
}
CUSTOM_HEADERS = {
    "customHeaders": [
        {"name": "X-Practice", "value": "195900"},
        {"name": "X-Trace", "value": "contact-center"},
    ]
}
ATHENA_FHIR = {"useBatch": True, "categoryFilterArray": ["409063004"]}
ATHENA_SETTINGS = {
    "practiceId": "195900",
    "patientMrnCustomFieldId": "12",
    "cacheProvidersEnabled": True,
    "cacheProvidersDurationTtl": "PT48H",
    "cacheDepartmentsEnabled": True,
    "cacheDepartmentsDurationTtl": "P2D",
    "patientFullSsn": True,
    "patientMrn": True,
    "appointmentConfirmationId": "2",
    "departmentIdForSendInteractiveRecords": "150",
    "customFieldEnabled": True,
    "customFieldMapping": [{"name": "1", "value": "ssn"}, {"name": "2", "value": "mrn"}],
    "createCaseAutomaticallyAddClosedStatus": True,
    "sendDataDecision": "PATIENT_CASE",
    "caseClassForSendData": "CLINICALQUESTION",
    "sendRecordingUrl": True,
    "sendDataAfterMissedCall": True,
}
CERNER_FHIR = {
    "urlPrefix": "/r4/ec2458f2",
    "ssnIdentifier": "urn:oid:2.16.840.1.113883.4.1.7",
    "mrnIdentifier": "urn:oid:2.16.840.1.113883.6.1000",
    "serviceTypeIdentifier": "service-type-7",
    "selfServiceIdentifier": "urn:cerner:self-service",
    "legalSexSearch": True,
    "useBatch": True,
    "dayRangeForTemporalSearches": 30,
    "useGtInDateRange": True,
    "useLtInDateRange": True,
    "useTelecom": True,
    "usePatientIdAsIdentifier": True,
    "bypassAppointmentRead": True,
    "categoryFilterArray": ["409063004", "386053000"],
    "systemForSendInteractiveRecords": "https://fhir.cerner.com/ec2458f2/codeSet/72",
    "codeForSendInteractiveRecords": "2820507",
    "displayForSendInteractiveRecords": "Admission Note Physician",
    "textForSendInteractiveRecords": "Admission Note Physician",
    "authorReferenceIdForSendInteractiveRecords": "1",
    "titleForSendInteractiveRecords": "Conversation details",
    "authorReferenceTypeForSendInteractiveRecords": "Practitioner",
}
ELLKAY_SETTINGS = {
    "subscriberKey": "subscriber-key-1",
    "siteServiceKey": "site-service-key-1",
    "appointmentEncounterSearchMaxDays": 14,
    "appointmentConfirmationComment": "Confirmed by the contact center on {{DATETIME}}",
    "slotSearchMaxDays": 21,
    "nameForSendInteractiveRecords": "Conversation details",
    "documentTypeIdForSendInteractiveRecords": "41",
    "waitlistingStatusName": "On waitlist",
    "reschedulingStatusName": "Moved",
    "accountTimeZoneOffset": "-05:00",
    "sendRecordingUrl": True,
    "sendDataAfterMissedCall": True,
}

# Per EHR, the blocks it has: (field of IntegrationSettings, mutation, every field of the block).
BLOCKS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "EPIC": [
        ("headers", UPDATE_HEADERS, EPIC_HEADERS),
        ("fhir", UPDATE_FHIR, EPIC_FHIR),
        ("ehr", UPDATE_EHR, EPIC_SETTINGS),
        ("oauth", UPDATE_OAUTH, EPIC_OAUTH),
    ],
    "ATHENA": [
        ("headers", UPDATE_HEADERS, CUSTOM_HEADERS),
        ("fhir", UPDATE_FHIR, ATHENA_FHIR),
        ("ehr", UPDATE_EHR, ATHENA_SETTINGS),
    ],
    "CERNER": [
        ("headers", UPDATE_HEADERS, CUSTOM_HEADERS),
        ("fhir", UPDATE_FHIR, CERNER_FHIR),
    ],
    "ELLKAY": [
        ("headers", UPDATE_HEADERS, CUSTOM_HEADERS),
        ("ehr", UPDATE_EHR, ELLKAY_SETTINGS),
    ],
}


class Session:
    """One tenant's conversation with the gateway; keeps every response body it received."""

    def __init__(self, gateway: Gateway, tenant_id: str) -> None:
        self.gateway = gateway
        self.tenant_id = tenant_id
        self.bodies: list[dict[str, Any]] = []

    async def save(self, document: str, **variables: Any) -> dict[str, Any]:
        """Run a mutation that must be stored; its settings."""
        body = await self.gateway.post(document, tenantId=self.tenant_id, **variables)
        self.bodies.append(body)
        assert "errors" not in body, body["errors"]
        (result,) = body["data"].values()
        assert result["__typename"] == "SettingsSaved", result
        settings: dict[str, Any] = result["settings"]
        return settings

    async def update(self, document: str, provider: str, **fields: Any) -> dict[str, Any]:
        return await self.save(document, input={provider.lower(): fields})

    async def read(self) -> dict[str, Any]:
        body = await self.gateway.post(INTEGRATION_SETTINGS, tenantId=self.tenant_id)
        self.bodies.append(body)
        assert "errors" not in body, body["errors"]
        settings: dict[str, Any] = body["data"]["integrationSettings"]
        return settings


def fields_of(block: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in block.items() if name != "__typename"}


@pytest.mark.parametrize("provider", ["EPIC", "ATHENA", "CERNER", "ELLKAY"])
async def test_every_block_of_an_ehr_reads_back_as_it_was_saved(
    gateway: Gateway, tenant_id: str, provider: str
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider=provider)
    await session.save(CREATE_EXTERNAL_GATEWAY, connection=CONNECTION)
    await session.save(UPDATE_PATIENT_RESTRICTION, expression="age < 18")
    for _, document, fields in BLOCKS[provider]:
        await session.save(document, input={provider.lower(): fields})

    settings = await session.read()

    assert (settings["tenantId"], settings["provider"]) == (tenant_id, provider)
    assert settings["version"] == 3 + len(BLOCKS[provider])
    gateway_fields = settings["externalGateway"]
    assert {name: gateway_fields[name] for name in CONNECTION} == CONNECTION
    assert settings["patientRestriction"] == {"expression": "age < 18"}
    for block, _, fields in BLOCKS[provider]:
        stored = fields_of(settings[block])
        expected = dict(fields)
        for secret in ("soapPassword", "subscriberKey", "siteServiceKey"):
            if secret in expected:
                del expected[secret]
                status = stored.pop(secret)
                assert status["isSet"] is True
                assert FINGERPRINT.fullmatch(status["fingerprint"])
        assert stored == expected, block
    for body in session.bodies:
        for secret in (SOAP_PASSWORD, "subscriber-key-1", "site-service-key-1"):
            assert secret not in json.dumps(body)


@pytest.mark.parametrize(
    ("provider", "fhir", "ehr_typename", "oauth"),
    [
        ("EPIC", "EpicFhirSettings", "EpicSettings", "EpicOAuthSettings"),
        ("ATHENA", "AthenaFhirSettings", "AthenaSettings", None),
        ("CERNER", "CernerFhirSettings", "CernerSettings", None),
        ("ELLKAY", None, "EllkaySettings", None),
    ],
)
async def test_each_ehr_shows_only_the_blocks_it_has(
    gateway: Gateway,
    tenant_id: str,
    provider: str,
    fhir: str | None,
    ehr_typename: str,
    oauth: str | None,
) -> None:
    session = Session(gateway, tenant_id)
    settings = await session.save(SELECT_PROVIDER, provider=provider)

    assert (settings["fhir"] or {}).get("__typename") == fhir
    assert settings["ehr"]["__typename"] == ehr_typename
    assert (settings["oauth"] or {}).get("__typename") == oauth


async def test_cerner_has_no_ehr_settings_even_if_a_client_claims_some(
    gateway: Gateway, tenant_id: str
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider="CERNER")

    await gateway.post(UPDATE_EHR, tenantId=tenant_id, input={"cerner": {"hasSettings": True}})

    assert (await session.read())["ehr"] == {"__typename": "CernerSettings", "hasSettings": False}


async def test_omitting_a_field_keeps_its_stored_value(gateway: Gateway, tenant_id: str) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider="EPIC")
    first = await session.update(UPDATE_EHR, "EPIC", **EPIC_SETTINGS)

    second = await session.update(UPDATE_EHR, "EPIC", vipFlagType="CONF")

    assert second["version"] == first["version"] + 1
    assert second["ehr"]["vipFlagType"] == "CONF"
    kept = {name: value for name, value in first["ehr"].items() if name != "vipFlagType"}
    assert {name: second["ehr"][name] for name in kept} == kept
    assert second["ehr"]["soapPassword"]["isSet"] is True  # the secret survives, unchanged


NULL_RESETS = [
    pytest.param(
        "ELLKAY", UPDATE_EHR, "ehr", "waitlistingStatusName", "On waitlist", "Waitlist",
        id="ellkay-waitlisting-status",
    ),
    pytest.param(
        "ELLKAY", UPDATE_EHR, "ehr", "reschedulingStatusName", "Moved", "Rescheduled",
        id="ellkay-rescheduling-status",
    ),
    pytest.param(
        "ELLKAY", UPDATE_EHR, "ehr", "accountTimeZoneOffset", "-05:00", "+00:00",
        id="ellkay-time-zone-offset",
    ),
    pytest.param(
        "ELLKAY", UPDATE_EHR, "ehr", "appointmentEncounterSearchMaxDays", 14, 7,
        id="ellkay-search-days",
    ),
    pytest.param(
        "ELLKAY", UPDATE_EHR, "ehr", "slotSearchMaxDays", 21, None, id="ellkay-slot-days",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, "ehr", "epicMaximumSlotSearchDateRangeInDays", 45, 30,
        id="epic-slot-search-maximum",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, "ehr", "epicUserIdType", "Internal", "External",
        id="epic-user-id-type",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, "ehr", "quickCrmTopicMapping", [{"name": "Refill", "value": "101"}],
        [], id="epic-quick-crm-mapping",
    ),
    pytest.param(
        "EPIC", UPDATE_FHIR, "fhir", "ssnIdentifier", "urn:oid:1.2.3", US_SSN_OID,
        id="epic-ssn-deployment-default",
    ),
    pytest.param(
        "EPIC", UPDATE_FHIR, "fhir", "mrnIdentifier", "urn:oid:1.2.3.4", None,
        id="epic-mrn-without-default",
    ),
    pytest.param(
        "EPIC", UPDATE_HEADERS, "headers", "epicClientId", "client-0a1b2c", None,
        id="epic-client-id-header",
    ),
    pytest.param(
        "EPIC", UPDATE_OAUTH, "oauth", "oauthTokenUrl", "https://auth.example.test/token", None,
        id="epic-token-url",
    ),
    pytest.param(
        "ATHENA", UPDATE_EHR, "ehr", "cacheProvidersDurationTtl", "PT48H", "PT20H",
        id="athena-cache-ttl",
    ),
    pytest.param(
        "ATHENA", UPDATE_HEADERS, "headers", "customHeaders", [{"name": "X-A", "value": "1"}],
        [], id="athena-custom-headers",
    ),
    pytest.param(
        "CERNER", UPDATE_FHIR, "fhir", "ssnIdentifier", "urn:oid:1.2.3", US_SSN_OID,
        id="cerner-ssn-deployment-default",
    ),
    pytest.param(
        "CERNER", UPDATE_FHIR, "fhir", "useBatch", True, False, id="cerner-use-batch",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "document", "block", "name", "value", "default"), NULL_RESETS)
async def test_sending_null_resets_a_field_to_its_default_and_keeps_the_others(
    gateway: Gateway,
    tenant_id: str,
    provider: str,
    document: str,
    block: str,
    name: str,
    value: Any,
    default: Any,
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider=provider)
    saved = await session.update(document, provider, **{name: value})
    assert saved[block][name] == value

    reset = await session.update(document, provider, **{name: None})

    assert reset[block][name] == default
    assert (await session.read())[block][name] == default
    others = {key: item for key, item in saved[block].items() if key != name}
    assert {key: reset[block][key] for key in others} == others


async def test_null_soap_username_and_password_together_clear_both(
    gateway: Gateway, tenant_id: str
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider="EPIC")
    saved = await session.update(
        UPDATE_EHR, "EPIC", soapUsername="soap-refills", soapPassword=SOAP_PASSWORD
    )
    assert saved["ehr"]["soapPassword"]["isSet"] is True

    cleared = await session.update(UPDATE_EHR, "EPIC", soapUsername=None, soapPassword=None)

    assert cleared["ehr"]["soapUsername"] is None
    unset = {"isSet": False, "fingerprint": None, "updatedAt": None}
    assert cleared["ehr"]["soapPassword"] == unset
    assert (await session.read())["ehr"]["soapPassword"]["isSet"] is False
    for body in session.bodies:
        assert SOAP_PASSWORD not in json.dumps(body)


async def test_a_new_soap_password_changes_the_fingerprint_and_the_same_one_keeps_it(
    gateway: Gateway, tenant_id: str
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider="EPIC")
    first = await session.update(
        UPDATE_EHR, "EPIC", soapUsername="soap-refills", soapPassword=SOAP_PASSWORD
    )
    fingerprint = first["ehr"]["soapPassword"]["fingerprint"]

    rotated = await session.update(UPDATE_EHR, "EPIC", soapPassword="Another-SOAP-pw-2")
    restored = await session.update(UPDATE_EHR, "EPIC", soapPassword=SOAP_PASSWORD)

    assert FINGERPRINT.fullmatch(rotated["ehr"]["soapPassword"]["fingerprint"])
    assert rotated["ehr"]["soapPassword"]["fingerprint"] != fingerprint
    assert restored["ehr"]["soapPassword"]["fingerprint"] == fingerprint
    for body in session.bodies:
        assert SOAP_PASSWORD not in json.dumps(body)
        assert "Another-SOAP-pw-2" not in json.dumps(body)


async def test_creating_the_external_gateway_generates_a_url_safe_id_and_base_path(
    gateway: Gateway, tenant_id: str
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider="ATHENA")

    created = (await session.save(CREATE_EXTERNAL_GATEWAY, connection=CONNECTION))[
        "externalGateway"
    ]

    gateway_id = created["externalGatewayId"]
    assert GATEWAY_ID.fullmatch(gateway_id)
    assert created["basePathUrl"] == "https://gateway.example.test/gateways/" + gateway_id
    assert (await session.read())["externalGateway"] == created


async def test_saving_the_connection_again_keeps_the_external_gateway_id(
    gateway: Gateway, tenant_id: str
) -> None:
    session = Session(gateway, tenant_id)
    await session.save(SELECT_PROVIDER, provider="EPIC")
    created = (await session.save(CREATE_EXTERNAL_GATEWAY, connection=CONNECTION))[
        "externalGateway"
    ]
    edited_connection = {
        "name": "Epic sandbox",
        "baseUrl": "https://sandbox.epic.example.test/api/FHIR/R4",
        "environment": "NON_PRODUCTION",
        "description": "Testing before go-live.",
    }

    edited = (await session.save(CREATE_EXTERNAL_GATEWAY, connection=edited_connection))[
        "externalGateway"
    ]

    assert {name: edited[name] for name in edited_connection} == edited_connection
    assert edited["externalGatewayId"] == created["externalGatewayId"]
    assert edited["basePathUrl"] == created["basePathUrl"]
    assert (await session.read())["externalGateway"] == edited


async def test_two_tenants_get_different_external_gateway_ids(
    gateway: Gateway, tenant_id: str
) -> None:
    ids = []
    for tenant in (tenant_id, f"{tenant_id}-other"):
        session = Session(gateway, tenant)
        await session.save(SELECT_PROVIDER, provider="CERNER")
        settings = await session.save(CREATE_EXTERNAL_GATEWAY, connection=CONNECTION)
        ids.append(settings["externalGateway"]["externalGatewayId"])

    assert all(GATEWAY_ID.fullmatch(gateway_id) for gateway_id in ids)
    assert ids[0] != ids[1]
