"""readiness: every setting the spec's tables mark mandatory, with its state, and the warnings."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import (
    CREATE_EXTERNAL_GATEWAY,
    READINESS,
    SELECT_PROVIDER,
    UPDATE_EHR,
    UPDATE_FHIR,
    UPDATE_HEADERS,
)

MANDATORY = {
    "EPIC": [
        ["headers", "epicClientId"],
        ["headers", "epicUserId"],
        ["headers", "epicUserIdType"],
        ["fhir", "ssnIdentifier"],
        ["fhir", "mrnIdentifier"],
        ["ehr", "context"],
        ["ehr", "jkuServerUrl"],
    ],
    "ATHENA": [["ehr", "practiceId"]],
    "CERNER": [["fhir", "ssnIdentifier"], ["fhir", "mrnIdentifier"]],
    "ELLKAY": [["ehr", "subscriberKey"], ["ehr", "siteServiceKey"]],
}
# Beyond the spec's mandatory settings: every call to the EHR goes through the external gateway,
# and Epic's JWTs (pause and resume, click to call) need an issuer, an audience and a key set.
NEEDED_BY_FUNCTIONS = {
    "EPIC": [["externalGateway"], ["ehr", "jwtIssuerUrl"], ["jkuKeySet"], ["ehr", "jwtAudience"]],
    "ATHENA": [["externalGateway"]],
    "CERNER": [["externalGateway"]],
    "ELLKAY": [["externalGateway"]],
}
CONNECTION = {"name": "EHR", "baseUrl": "https://ehr.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip


async def _readiness(gateway: Gateway, tenant_id: str) -> dict[str, object]:
    data = await gateway.execute(READINESS, tenantId=tenant_id)
    readiness: dict[str, object] = data["readiness"]
    return readiness


async def test_a_new_tenant_lacks_a_provider(gateway: Gateway, tenant_id: str) -> None:
    readiness = await _readiness(gateway, tenant_id)
    assert readiness["ready"] is False
    assert readiness["missing"] == [
        {
            "block": "PROVIDER",
            "path": ["provider"],
            "state": "MISSING",
            "message": "no EHR provider selected",
        }
    ]


@pytest.mark.parametrize("provider", sorted(MANDATORY))
async def test_every_mandatory_setting_is_checked_on_a_new_tenant(
    gateway: Gateway, tenant_id: str, provider: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    readiness = await _readiness(gateway, tenant_id)
    checks = {tuple(check["path"]): check["state"] for check in readiness["checks"]}  # type: ignore[attr-defined]
    assert checks.pop(("provider",)) == "SET"
    needed = MANDATORY[provider] + NEEDED_BY_FUNCTIONS[provider]
    assert sorted(checks) == sorted(tuple(path) for path in needed)
    # The SSN identifier has a deployment default (the US SSN OID); everything else is missing.
    for path, state in checks.items():
        assert state == ("DEFAULT" if path == ("fhir", "ssnIdentifier") else "MISSING"), path
    assert readiness["ready"] is False


async def test_an_epic_tenant_with_every_mandatory_setting_still_lacks_what_jwts_need(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(
        UPDATE_HEADERS, tenantId=tenant_id,
        input={"epic": {"epicClientId": "c", "epicUserId": "u", "epicUserIdType": "External"}},
    )  # fmt: skip
    await gateway.execute(
        UPDATE_FHIR, tenantId=tenant_id, input={"epic": {"mrnIdentifier": "urn:oid:1.2.840.1"}}
    )
    before = await _readiness(gateway, tenant_id)
    assert [check["path"] for check in before["missing"]] == [  # type: ignore[attr-defined]
        ["ehr", "context"],
        ["ehr", "jkuServerUrl"],
        *NEEDED_BY_FUNCTIONS["EPIC"],
    ]
    await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id,
        input={"epic": {"context": "Scheduling", "jkuServerUrl": "https://epic.example/jwks"}},
    )  # fmt: skip
    after = await _readiness(gateway, tenant_id)
    assert after["ready"] is False
    assert [check["path"] for check in after["missing"]] == NEEDED_BY_FUNCTIONS["EPIC"]  # type: ignore[attr-defined]


async def test_athena_case_class_is_required_for_patient_cases(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=CONNECTION)
    await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id,
        input={"athena": {"practiceId": "195900", "sendDataDecision": "PATIENT_CASE",
                          "departmentIdForSendInteractiveRecords": "1"}},
    )  # fmt: skip
    readiness = await _readiness(gateway, tenant_id)
    assert readiness["ready"] is False
    assert [check["path"] for check in readiness["missing"]] == [  # type: ignore[attr-defined]
        ["ehr", "caseClassForSendData"]
    ]
    await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input={"athena": {"caseClassForSendData": "Referral"}}
    )
    assert (await _readiness(gateway, tenant_id))["ready"] is True


async def test_settings_that_have_no_effect_are_warned_about_not_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=CONNECTION)
    saved = await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id,
        input={
            "athena": {
                "practiceId": "1",
                "patientMrnCustomFieldId": "77",
                "customFieldMapping": [{"name": "1", "value": "ssn"}],
                "cacheDepartmentsDurationTtl": "PT2H",
            }
        },
    )  # fmt: skip
    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved"
    readiness = await _readiness(gateway, tenant_id)
    assert readiness["ready"] is True
    assert sorted(warning["path"][1] for warning in readiness["warnings"]) == [  # type: ignore[attr-defined]
        "cacheDepartmentsDurationTtl",
        "customFieldMapping",
        "patientMrnCustomFieldId",
    ]
    assert {warning["code"] for warning in readiness["warnings"]} == {"NO_EFFECT"}  # type: ignore[attr-defined]


async def test_epic_oauth_flag_without_oauth_settings_is_warned_about(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": {"useOauth": True}})
    readiness = await _readiness(gateway, tenant_id)
    assert [
        (warning["block"], warning["path"], warning["code"])
        for warning in readiness["warnings"]  # type: ignore[attr-defined]
    ] == [
        ("OAUTH", ["oauth", "epicClientId"], "REQUIRED_BY_OAUTH"),
        ("OAUTH", ["oauth", "oauthTokenUrl"], "REQUIRED_BY_OAUTH"),
    ]
