"""What a hospital's integration engineer types into the Integrations Settings page: values of the
shapes the EHR vendors publish and real deployments use, and the few GraphQL steps every
customer-values test takes (pick the EHR, connect it, save a block, read it back).

The host names are invented (example-health.org and the like); the shapes are the vendors'.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway
from tests.documents import (
    CREATE_EXTERNAL_GATEWAY,
    INTEGRATION_SETTINGS,
    READINESS,
    SELECT_PROVIDER,
)

# --- Epic ---------------------------------------------------------------------------------------

# An Interconnect instance as Epic's endpoint directory (open.epic.com) lists customers' FHIR
# bases: the host, the instance path (interconnect-<env>-oauth), then api/FHIR/R4/ with its
# trailing slash, as copied from that list.
EPIC_INSTANCE = "https://fhir.example-health.org/interconnect-aocurprd-oauth"
EPIC_FHIR_BASE_URL = f"{EPIC_INSTANCE}/api/FHIR/R4/"
# Epic app registration (fhir.epic.com, "Build Apps") issues client ids as lowercase UUIDs.
EPIC_CLIENT_ID = "6c12dff4-24e7-4475-a742-b08972c4ea27"
# Epic web services read Epic-Client-ID, Epic-User-ID and Epic-User-IDType; the user id type is
# one of Epic's ID types (EXTERNAL, INTERNAL, CID, SYSTEMLOGIN, ...), EXTERNAL for a user record
# created for an outside system.
EPIC_HEADERS = {
    "epicClientId": EPIC_CLIENT_ID,
    "epicUserId": "TALKDESKCTI",
    "epicUserIdType": "EXTERNAL",
}
# Identifier systems as Epic exposes them: the US SSN OID, the organisation's own Epic OIDs
# (Epic's root 1.2.840.114350.1.13, the customer's number, then the ID type: .737384.14 an MRN,
# .2.686980 department ids), NPI for practitioners, codes by system|code.
EPIC_FHIR = {
    "ssnIdentifier": "urn:oid:2.16.840.1.113883.4.1",
    "mrnIdentifier": "urn:oid:1.2.840.114350.1.13.861.1.7.5.737384.14",
    "practitionerExternalUrn": "http://hl7.org/fhir/sid/us-npi",
    "locationExternalUrn": "urn:oid:1.2.840.114350.1.13.861.1.7.2.686980",
    "selfServiceIdentifier": "urn:oid:1.2.840.114350.1.13.861.1.7.2.698084",
    "legalSexSearch": True,
    "useBatch": False,
    "dayRangeForTemporalSearches": 180,
    "useGtInDateRange": False,
    "useLtInDateRange": True,
    "useTelecom": True,
    "usePatientIdAsIdentifier": True,
    "categoryFilterArray": ["409063004", "http://snomed.info/sct|409063004"],
    "directRescheduleUseCase": True,
}
# The key set Epic signs its outgoing JWTs with, served by the instance
# (api/epic/2019/Security/Open/PublicKeys/<id>/...), and its OAuth 2.0 issuer and token endpoint
# (Epic's backend OAuth: a JWT bearer client assertion posted to <instance>/oauth2/token).
EPIC_JKU = f"{EPIC_INSTANCE}/api/epic/2019/Security/Open/PublicKeys/530027/OIDC"
EPIC_ISSUER = f"{EPIC_INSTANCE}/oauth2"
EPIC_TOKEN_URL = f"{EPIC_INSTANCE}/oauth2/token"
EPIC_EHR = {
    "vipFlagType": "VIP",
    "context": "Scheduling",
    "jkuServerUrl": EPIC_JKU,
    "enableDefaultJkuServerUrlPattern": False,
    "jwtIssuerUrl": EPIC_ISSUER,
    "epicUserId": "TALKDESKCTI",
    "epicUserIdType": "External",
    "providerIdType": "NPI",
    "locationIdType": "External",
    "visitIdType": "CSN",
    # Epic SOAP users are EMP records, logged in to as emp$<id>.
    "soapUsername": "emp$TALKDESK",
    "useOauth": True,
    "oauthBasePath": f"{EPIC_INSTANCE}/",
    "receiveCommunicationVersion": "V3",
    "phoneSystemId": "1",
    "phoneSystemType": "EXTERNAL",
    "fallbackEntryDepartmentIdForServiceRecord": "101401001",
    "fallbackEntryDepartmentTypeForServiceRecord": "External",
    "fallbackAgentUserIdForServiceRecord": "TALKDESKCTI",
    "fallbackAgentUserTypeForServiceRecord": "External",
    "sourceTypeForServiceRecord": "Phone",
    "sourceNameForServiceRecord": "Talkdesk",
    "sourceEntityIdForServiceRecord": "TDCC01",
    "sourceEntityTypeForServiceRecord": "External",
    "fallbackPatientIdTypeForServiceRecord": "MRN",
    "epicMaximumSlotSearchDateRangeInDays": 14,
    "maxAllowedSlotSearchDateRangeDays": 60,
    # The spec's example: "1 <> Appointments 2 <> Billing".
    "quickCrmTopicMapping": [
        {"name": "Appointments", "value": "1"},
        {"name": "Billing", "value": "2"},
        {"name": "Prescription refill", "value": "3"},
    ],
    "sendRecordingUrl": True,
    "sendDataAfterMissedCall": True,
}
# A password as a hospital's password policy makes them: every class of character.
SOAP_PASSWORD = "Zr7#q!Lp2@vX9$tK&w=;"
EPIC_OAUTH = {"epicClientId": EPIC_CLIENT_ID, "oauthTokenUrl": EPIC_TOKEN_URL}

# --- Cerner / Oracle Health ---------------------------------------------------------------------

# Millennium tenants are UUIDs; the FHIR base is https://fhir-ehr.cerner.com/r4/<tenant>/ and
# code sets are https://fhir.cerner.com/<tenant>/codeSet/<n> (4: person alias types, 72: event
# codes for documents). This tenant is Oracle Health's public sandbox.
CERNER_TENANT = "ec2458f2-1e24-41c8-b71b-0e701af7583d"
CERNER_FHIR_BASE_URL = f"https://fhir-ehr.cerner.com/r4/{CERNER_TENANT}/"
CERNER_FHIR = {
    "ssnIdentifier": "http://hl7.org/fhir/sid/us-ssn",
    "mrnIdentifier": f"https://fhir.cerner.com/{CERNER_TENANT}/codeSet/4",
    "serviceTypeIdentifier": "6000",
    "selfServiceIdentifier": "urn:oid:2.16.840.1.113883.3.13.6",
    "legalSexSearch": False,
    "useBatch": True,
    "dayRangeForTemporalSearches": 90,
    "useGtInDateRange": True,
    "useLtInDateRange": False,
    "useTelecom": True,
    "usePatientIdAsIdentifier": False,
    "bypassAppointmentRead": True,
    "categoryFilterArray": [f"https://fhir.cerner.com/{CERNER_TENANT}/codeSet/6000|2515"],
    "systemForSendInteractiveRecords": f"https://fhir.cerner.com/{CERNER_TENANT}/codeSet/72",
    "codeForSendInteractiveRecords": "2820507",
    "displayForSendInteractiveRecords": "Admission Note Physician",
    "textForSendInteractiveRecords": "Admission Note Physician",
    "authorReferenceIdForSendInteractiveRecords": "12724066",
    "titleForSendInteractiveRecords": "Conversation details",
    "authorReferenceTypeForSendInteractiveRecords": "Practitioner",
}

# --- Athena -------------------------------------------------------------------------------------

# athenahealth's platform: FHIR R4 under api.platform.athenahealth.com/fhir/r4 (the preview
# environment is api.preview.platform...); practice ids are numbers (195900 is the preview
# sandbox practice).
ATHENA_FHIR_BASE_URL = "https://api.platform.athenahealth.com/fhir/r4"
ATHENA_EHR = {
    "practiceId": "195900",
    "patientMrnCustomFieldId": "43",
    "cacheProvidersEnabled": True,
    "cacheProvidersDurationTtl": "PT48H",
    "cacheDepartmentsEnabled": True,
    "cacheDepartmentsDurationTtl": "P1DT12H",
    "patientFullSsn": True,
    "patientMrn": True,
    "appointmentConfirmationId": "2",
    "departmentIdForSendInteractiveRecords": "150",
    "customFieldEnabled": True,
    "customFieldMapping": [{"name": "1", "value": "ssn"}],
    "createCaseAutomaticallyAddClosedStatus": True,
    "sendDataDecision": "PATIENT_CASE",
    "caseClassForSendData": "PATIENTCASE",
    "sendRecordingUrl": True,
    "sendDataAfterMissedCall": False,
}
ATHENA_FHIR = {"useBatch": True, "categoryFilterArray": ["409063004"]}

# --- Ellkay -------------------------------------------------------------------------------------

# ELLKAY hands out its keys as GUIDs (upper case, as Windows tools print them) and base64 text.
ELLKAY_SUBSCRIBER_KEY = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
ELLKAY_SITE_SERVICE_KEY = "q5Xw+9/Lk2hT0vRb8ZcN4e=="
ELLKAY_EHR = {
    "appointmentEncounterSearchMaxDays": 14,
    "appointmentConfirmationComment": (
        "Confirmed by Talkdesk on {{DATETIME}}. Please arrive 15 minutes early and bring your "
        "insurance card; call (555) 010-2000 to reschedule."
    ),
    "slotSearchMaxDays": 60,
    "nameForSendInteractiveRecords": "Conversation details",
    "documentTypeIdForSendInteractiveRecords": "12",
    "waitlistingStatusName": "Wait List",
    "reschedulingStatusName": "Rescheduled",
    "accountTimeZoneOffset": "-05:00",
    "sendRecordingUrl": True,
    "sendDataAfterMissedCall": True,
}

# --- Custom headers -----------------------------------------------------------------------------

# Headers API gateways in front of an EHR ask for: Azure API Management's subscription key,
# MuleSoft's client_id / client_secret pair (with underscores), IBM API Connect's X-IBM-Client-Id,
# Kong's and Apigee's apikey, and a correlation id; names as each product spells them.
CUSTOM_HEADERS = [
    {"name": "Ocp-Apim-Subscription-Key", "value": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
    {"name": "client_id", "value": "9b1f2a3c4d5e6f708192a3b4c5d6e7f8"},
    {"name": "client_secret", "value": "Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"},
    {"name": "X-IBM-Client-Id", "value": "c0ffee00-1234-4bcd-9876-00deadbeef00"},
    {"name": "apikey", "value": "k3y_live_Zm9vYmFyYmF6"},
    {"name": "X-Correlation-ID", "value": "talkdesk-hec; site=north"},
]

# --- The steps ----------------------------------------------------------------------------------


def connection(base_url: str, name: str = "EHR production") -> dict[str, Any]:
    """The fields under "Edit Connection ID"."""
    return {
        "name": name,
        "baseUrl": base_url,
        "environment": "PRODUCTION",
        "description": "Production FHIR endpoint; change window Sundays 02:00-04:00 local time.",
    }


async def select(gateway: Gateway, tenant_id: str, provider: str) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    assert data["selectEhrProvider"]["__typename"] == "SettingsSaved", data


async def save(gateway: Gateway, document: str, **variables: Any) -> dict[str, Any]:
    """Run a mutation whose one root field answers a SettingsResult, and return that answer."""
    data = await gateway.execute(document, **variables)
    (result,) = data.values()
    assert isinstance(result, dict)
    return result


async def saved(gateway: Gateway, document: str, **variables: Any) -> dict[str, Any]:
    """Run a save that must succeed; return the settings it stored."""
    result = await save(gateway, document, **variables)
    assert result["__typename"] == "SettingsSaved", result
    settings: dict[str, Any] = result["settings"]
    return settings


async def connect(gateway: Gateway, tenant_id: str, base_url: str) -> dict[str, Any]:
    return await saved(
        gateway, CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=connection(base_url)
    )


async def connected(gateway: Gateway, tenant_id: str, provider: str, base_url: str) -> None:
    """The EHR picked and its connection saved: where a configuration starts."""
    await select(gateway, tenant_id, provider)
    await connect(gateway, tenant_id, base_url)


async def save_block(
    gateway: Gateway, tenant_id: str, document: str, vendor: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Save one vendor's values of a block (document: UPDATE_EHR, UPDATE_FHIR, ...); return the
    SettingsResult answered."""
    return await save(gateway, document, tenantId=tenant_id, input={vendor: values})


async def saved_block(
    gateway: Gateway, tenant_id: str, document: str, vendor: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Save one vendor's values of a block, which must succeed; return the settings stored."""
    return await saved(gateway, document, tenantId=tenant_id, input={vendor: values})


async def read(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    settings: dict[str, Any] = data["integrationSettings"]
    return settings


async def readiness(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    data = await gateway.execute(READINESS, tenantId=tenant_id)
    found: dict[str, Any] = data["readiness"]
    return found


def missing_paths(found: dict[str, Any]) -> list[tuple[str, ...]]:
    return [tuple(check["path"]) for check in found["missing"]]


def warning_codes(found: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(warning["path"]), warning["code"]) for warning in found["warnings"]]


def refusal(result: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """The (path, code) pairs a ValidationFailed answer gives."""
    assert result["__typename"] == "ValidationFailed", result
    return [(tuple(error["path"]), error["code"]) for error in result["errors"]]
