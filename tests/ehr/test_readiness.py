"""Readiness (ehr/readiness.py): which mandatory settings a tenant lacks, and which of its
settings have no effect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, ExternalGateway, JkuSnapshot, SettingsBlock
from ehr_gateway.ehr.identifiers import US_SSN_OID, IdentifierDefaults
from ehr_gateway.ehr.oauth import SigningKey
from ehr_gateway.ehr.readiness import MANDATORY, CheckState, Readiness, assess
from ehr_gateway.ehr.secret import StoredSecret

NOW = datetime.now(UTC)
SET_SECRET = {"ciphertext": "c2VhbGVk", "keyId": "k1"}
GATEWAY = ExternalGateway(
    name="Primary", base_url="https://ehr.example.test/api", environment="PRODUCTION",
    external_gateway_id="gw-0123456789abcdef", created_at=NOW,
    base_path_url="https://gateway.example.test/gateways/gw-0123456789abcdef",
)  # fmt: skip
EPIC_GATEWAY = GATEWAY.model_copy(
    update={"base_url": "https://ehr.example.test/Interconnect-PRD/api/FHIR/R4/"}
)
JKU = "https://keys.example.test/jwks.json"
NO_DEFAULTS = IdentifierDefaults(ssn_identifier=None)


def tenant(provider: EhrProvider, **blocks: Any) -> TenantSettings:
    return TenantSettings(
        tenant_id="tenant-1",
        provider=provider,
        providers={provider: ProviderSettings(**blocks)},
    )


def states(readiness: Readiness) -> dict[tuple[str, ...], CheckState]:
    return {check.path: check.state for check in readiness.checks}


def warnings(readiness: Readiness) -> set[tuple[tuple[str, ...], str]]:
    return {(warning.path, warning.code) for warning in readiness.warnings}


def missing(readiness: Readiness) -> set[tuple[str, ...]]:
    return {check.path for check in readiness.missing}


READY_EPIC: dict[str, Any] = {
    "headers": {"epicClientId": "c-1", "epicUserId": "u-1", "epicUserIdType": "External"},
    "fhir": {"ssnIdentifier": "urn:oid:1.2.3", "mrnIdentifier": "urn:oid:1.2.4"},
    "ehr": {
        "context": "Scheduling",
        "jkuServerUrl": JKU,
        "jwtIssuerUrl": "https://issuer.example.test",
    },
    "external_gateway": EPIC_GATEWAY,
    "jku": JkuSnapshot(url=JKU, keys=[], fetched_at=NOW),
}


# --- The provider and each EHR's mandatory settings ---------------------------------------------


@pytest.mark.parametrize("settings", [None, TenantSettings(tenant_id="tenant-1")])
def test_a_tenant_without_a_provider_misses_the_provider(settings: TenantSettings | None) -> None:
    readiness = assess(settings, IdentifierDefaults())
    assert [(c.block, c.path, c.state) for c in readiness.checks] == [
        (SettingsBlock.PROVIDER, ("provider",), CheckState.MISSING)
    ]
    assert not readiness.ready


@pytest.mark.parametrize("provider", list(EhrProvider))
def test_a_new_tenant_misses_every_mandatory_setting_and_the_gateway(provider: EhrProvider) -> None:
    readiness = assess(tenant(provider), NO_DEFAULTS)
    expected = {(block.value.lower(), _camel(field)) for block, field in MANDATORY[provider]}
    assert expected | {("externalGateway",)} <= missing(readiness)
    assert states(readiness)[("provider",)] is CheckState.SET


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_the_mandatory_settings_are_the_specs() -> None:
    assert {p: {f for _, f in fields} for p, fields in MANDATORY.items()} == {
        EhrProvider.EPIC: {"epic_client_id", "epic_user_id", "epic_user_id_type",
                           "ssn_identifier", "mrn_identifier", "context", "jku_server_url"},
        EhrProvider.ATHENA: {"practice_id"},
        EhrProvider.CERNER: {"ssn_identifier", "mrn_identifier"},
        EhrProvider.ELLKAY: {"subscriber_key", "site_service_key"},
    }  # fmt: skip


def test_a_deployment_default_counts_as_default_not_missing() -> None:
    readiness = assess(tenant(EhrProvider.CERNER), IdentifierDefaults())
    assert states(readiness)[("fhir", "ssnIdentifier")] is CheckState.DEFAULT
    assert states(readiness)[("fhir", "mrnIdentifier")] is CheckState.MISSING
    with_mrn = IdentifierDefaults(mrn_identifier="urn:oid:1.2.9")
    assert states(assess(tenant(EhrProvider.CERNER), with_mrn))[("fhir", "mrnIdentifier")] is (
        CheckState.DEFAULT
    )
    assert IdentifierDefaults().ssn_identifier == US_SSN_OID


def test_a_cerner_tenant_with_its_identifiers_and_gateway_is_ready() -> None:
    fhir = {"ssnIdentifier": "urn:oid:1.2.3", "mrnIdentifier": "urn:oid:1.2.4"}
    readiness = assess(tenant(EhrProvider.CERNER, fhir=fhir, external_gateway=GATEWAY), NO_DEFAULTS)
    assert readiness.ready and readiness.warnings == ()


def test_ellkay_keys_count_once_they_are_set() -> None:
    ehr = {"subscriberKey": SET_SECRET}
    readiness = assess(tenant(EhrProvider.ELLKAY, ehr=ehr), NO_DEFAULTS)
    assert states(readiness)[("ehr", "subscriberKey")] is CheckState.SET
    assert states(readiness)[("ehr", "siteServiceKey")] is CheckState.MISSING


# --- Epic: what the functions it turns on need --------------------------------------------------


def test_a_complete_epic_tenant_is_ready() -> None:
    readiness = assess(tenant(EhrProvider.EPIC, **READY_EPIC), NO_DEFAULTS)
    assert readiness.missing == ()
    assert states(readiness)[("ehr", "jwtAudience")] is CheckState.DEFAULT  # the base path URL
    assert readiness.ready
    assert readiness.warnings == ()


INSTANCE = "https://fhir.example.test/Interconnect-PRD"


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [
        pytest.param(f"{INSTANCE}/api/FHIR/R4/", None, id="base-url-holds-the-path"),
        pytest.param(f"{INSTANCE}/api/FHIR/R4", "/", id="prefix-is-a-slash"),
        pytest.param(f"{INSTANCE}/", "/api/FHIR/R4", id="prefix-holds-the-path"),
        pytest.param(f"{INSTANCE}/api", "/FHIR/R4/", id="split-between-the-two"),
        pytest.param(f"{INSTANCE}/api/FHIR/STU3", None, id="stu3"),
        pytest.param(f"{INSTANCE}/api/FHIR/DSTU2/", None, id="dstu2"),
        # IIS, which Epic runs on, matches paths ignoring case.
        pytest.param(f"{INSTANCE}/API/fhir/r4", None, id="other-case"),
        pytest.param("https://[2001:db8::25]:8443/Interconnect%20PRD/api/FHIR/R4", None,
                     id="port-and-percent-encoded-path"),
    ],
)  # fmt: skip
def test_an_epic_fhir_base_ending_in_api_fhir_version_is_not_warned_of(
    base_url: str, prefix: str | None
) -> None:
    gateway = EPIC_GATEWAY.model_copy(update={"base_url": base_url})
    fhir = {**READY_EPIC["fhir"], "urlPrefix": prefix} if prefix else READY_EPIC["fhir"]
    blocks = {**READY_EPIC, "external_gateway": gateway, "fhir": fhir}
    assert warnings(assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS)) == set()


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [
        pytest.param(f"{INSTANCE}/", None, id="instance-root"),
        pytest.param("https://fhir.example.test", None, id="host-only"),
        pytest.param(f"{INSTANCE}/", "/FHIR/R4", id="spec-example-prefix"),
        pytest.param(f"{INSTANCE}/api/FHIR/R4/", "/api/FHIR/R4", id="path-twice"),
        pytest.param(f"{INSTANCE}/api/FHIR/R4/Patient", None, id="a-resource-after-it"),
        pytest.param(f"{INSTANCE}/api/FHIR/", None, id="no-version"),
        pytest.param(f"{INSTANCE}/api/FHIR/R4B", None, id="a-version-epic-does-not-serve"),
        pytest.param(f"{INSTANCE}/api/epic/2019/R4", None, id="epic-proprietary-api"),
    ],
)  # fmt: skip
def test_an_epic_fhir_base_that_misses_api_fhir_version_is_warned_of_at_the_base_url(
    base_url: str, prefix: str | None
) -> None:
    gateway = EPIC_GATEWAY.model_copy(update={"base_url": base_url})
    fhir = {**READY_EPIC["fhir"], "urlPrefix": prefix} if prefix else READY_EPIC["fhir"]
    blocks = {**READY_EPIC, "external_gateway": gateway, "fhir": fhir}
    readiness = assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS)

    (warning,) = readiness.warnings
    assert (warning.block, warning.path, warning.code) == (
        SettingsBlock.EXTERNAL_GATEWAY, ("externalGateway", "baseUrl"), "NOT_EPIC_FHIR_BASE",
    )  # fmt: skip
    assert "api/FHIR/R4" in warning.message and "url prefix" in warning.message
    assert readiness.ready  # a warning: Epic may answer elsewhere, readiness cannot call it


def test_only_epic_is_held_to_epics_fhir_path() -> None:
    cerner = tenant(
        EhrProvider.CERNER,
        fhir={"ssnIdentifier": "urn:oid:1.2.3", "mrnIdentifier": "urn:oid:1.2.4"},
        external_gateway=GATEWAY,
    )
    assert assess(cerner, NO_DEFAULTS).warnings == ()


def test_epic_jwts_need_an_issuer_a_discovered_key_set_and_an_audience() -> None:
    blocks = {**READY_EPIC, "ehr": {"context": "Scheduling", "jkuServerUrl": JKU}}
    del blocks["jku"], blocks["external_gateway"]
    assert {("ehr", "jwtIssuerUrl"), ("jkuKeySet",), ("ehr", "jwtAudience")} <= missing(
        assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS)
    )


def test_a_key_set_discovered_for_another_url_is_missing() -> None:
    blocks = {**READY_EPIC, "jku": JkuSnapshot(url=JKU + "?old", keys=[], fetched_at=NOW)}
    readiness = assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS)
    (check,) = [c for c in readiness.checks if c.path == ("jkuKeySet",)]
    assert check.state is CheckState.MISSING and "refreshJku" in check.message


def test_a_soap_username_without_its_password_misses_the_password() -> None:
    blocks = {**READY_EPIC, "ehr": {**READY_EPIC["ehr"], "soapUsername": "soap-refills"}}
    assert missing(assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS)) == {
        ("ehr", "soapPassword")
    }


def test_use_oauth_needs_the_client_the_token_url_and_a_signing_key() -> None:
    blocks = {**READY_EPIC, "ehr": {**READY_EPIC["ehr"], "useOauth": True}}
    readiness = assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS)
    assert missing(readiness) == {
        ("oauth", "epicClientId"), ("oauth", "oauthTokenUrl"), ("oauthSigningKeys",),
    }  # fmt: skip
    assert {("oauth", "epicClientId"), ("oauth", "oauthTokenUrl")} == {
        path for path, code in warnings(readiness) if code == "REQUIRED_BY_OAUTH"
    }
    key = SigningKey(kid="k1", public_jwk={}, private_jwk=StoredSecret(), created_at=NOW)
    oauth = {"epicClientId": "c-1", "oauthTokenUrl": "https://auth.example.test/token"}
    ready = assess(
        tenant(EhrProvider.EPIC, **{**blocks, "oauth": oauth, "signing_keys": [key]}), NO_DEFAULTS
    )
    assert ready.ready


@pytest.mark.parametrize(
    ("ehr", "headers", "oauth", "expected"),
    [
        pytest.param({"enableDefaultJkuServerUrlPattern": True, "jwtIssuerUrl": None}, {}, {},
                     (("ehr", "jwtIssuerUrl"), "DEFAULT_JKU_PATTERN_WITHOUT_ISSUER"),
                     id="pattern-without-issuer"),
        pytest.param({}, {"epicClientId": "c-1"}, {"epicClientId": "c-2"},
                     (("headers", "epicClientId"), "EPIC_CLIENT_ID_MISMATCH"),
                     id="client-id-mismatch"),
        pytest.param({"soapPassword": SET_SECRET}, {}, {},
                     (("ehr", "soapPassword"), "NO_EFFECT"), id="password-without-username"),
        pytest.param({"oauthBasePath": "/oauth2"}, {}, {},
                     (("ehr", "oauthBasePath"), "NO_EFFECT"), id="base-path-without-oauth"),
    ],
)  # fmt: skip
def test_an_epic_setting_without_effect_is_warned_of(
    ehr: dict[str, Any],
    headers: dict[str, Any],
    oauth: dict[str, Any],
    expected: tuple[tuple[str, ...], str],
) -> None:
    blocks = {
        **READY_EPIC,
        "ehr": {k: v for k, v in {**READY_EPIC["ehr"], **ehr}.items() if v is not None},
        "headers": {**READY_EPIC["headers"], **headers},
        "oauth": oauth,
    }
    assert expected in warnings(assess(tenant(EhrProvider.EPIC, **blocks), NO_DEFAULTS))


# --- Athena: conditional requirements and settings without effect -------------------------------


def athena(**ehr: Any) -> Readiness:
    return assess(tenant(EhrProvider.ATHENA, ehr={"practiceId": "195900", **ehr}), NO_DEFAULTS)


def test_a_patient_case_decision_needs_a_case_class() -> None:
    readiness = athena(sendDataDecision="PATIENT_CASE", departmentIdForSendInteractiveRecords="1")
    assert states(readiness)[("ehr", "caseClassForSendData")] is CheckState.MISSING
    with_class = athena(
        sendDataDecision="PATIENT_CASE", caseClassForSendData="Refill",
        departmentIdForSendInteractiveRecords="1",
    )  # fmt: skip
    assert states(with_class)[("ehr", "caseClassForSendData")] is CheckState.SET
    assert ("ehr", "caseClassForSendData") not in states(athena())


@pytest.mark.parametrize(
    ("ehr", "expected"),
    [
        ({"patientMrnCustomFieldId": "77"}, (("ehr", "patientMrnCustomFieldId"), "NO_EFFECT")),
        ({"customFieldMapping": [{"name": "1", "value": "ssn"}]},
         (("ehr", "customFieldMapping"), "NO_EFFECT")),
        ({"cacheProvidersDurationTtl": "PT1H"},
         (("ehr", "cacheProvidersDurationTtl"), "NO_EFFECT")),
        ({"cacheDepartmentsDurationTtl": "PT1H"},
         (("ehr", "cacheDepartmentsDurationTtl"), "NO_EFFECT")),
        ({"caseClassForSendData": "Refill"}, (("ehr", "caseClassForSendData"), "NO_EFFECT")),
        ({"sendRecordingUrl": True},
         (("ehr", "departmentIdForSendInteractiveRecords"), "REQUIRED_TO_SEND_DATA")),
    ],
)  # fmt: skip
def test_an_athena_setting_without_effect_is_warned_of(
    ehr: dict[str, Any], expected: tuple[tuple[str, ...], str]
) -> None:
    assert expected in warnings(athena(**ehr))


def test_an_athena_setting_turned_on_by_its_switch_has_no_warning() -> None:
    readiness = athena(
        patientMrn=True, patientMrnCustomFieldId="77", customFieldEnabled=True,
        customFieldMapping=[{"name": "1", "value": "ssn"}], cacheProvidersEnabled=True,
        cacheProvidersDurationTtl="PT1H",
    )  # fmt: skip
    assert readiness.warnings == ()
