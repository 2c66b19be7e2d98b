"""Validation over the API: a value a rule refuses comes back as ``ValidationFailed`` at its path
in the input, with the rule's stable code, is never echoed and leaves the stored settings
untouched; the matching good value is stored and read back.

One or two cases per kind of refusal (a rule's own code, a length or range, an entry of a list,
a rule over two fields, a secret, the input member, the restriction expression) for each
mutation. The rules themselves, value by value, are tested on the models in tests/ehr/."""

from __future__ import annotations

import logging
from collections.abc import Iterator
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

MARKER = "s3cr3t-marker"
CONNECTION = {
    "name": "Primary EHR connection",
    "baseUrl": "https://ehr.example.test/api/FHIR/R4",
    "environment": "NON_PRODUCTION",
}
# The argument each document takes the submitted value in; the block mutations take `input`.
ARGUMENT = {CREATE_EXTERNAL_GATEWAY: "connection", UPDATE_PATIENT_RESTRICTION: "expression"}
BLOCK = {
    UPDATE_HEADERS: "headers",
    UPDATE_FHIR: "fhir",
    UPDATE_EHR: "ehr",
    UPDATE_OAUTH: "oauth",
    CREATE_EXTERNAL_GATEWAY: "externalGateway",
    UPDATE_PATIENT_RESTRICTION: "patientRestriction",
}


def variables(document: str, value: Any) -> dict[str, Any]:
    return {ARGUMENT.get(document, "input"): value}


def result_of(data: dict[str, Any]) -> dict[str, Any]:
    """The one mutation result in a response's data."""
    (result,) = data.values()
    assert isinstance(result, dict)
    return result


def strings_in(tree: Any) -> Iterator[str]:
    """Every string of a JSON body: keys and values, at any depth."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key
            yield from strings_in(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from strings_in(item)
    elif isinstance(tree, str):
        yield tree


def submitted_leaves(value: Any) -> Iterator[str]:
    """The submitted values (not the field names) as text."""
    if isinstance(value, dict):
        for item in value.values():
            yield from submitted_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from submitted_leaves(item)
    elif isinstance(value, str | int) and not isinstance(value, bool):
        yield str(value)


def assert_not_echoed(body: dict[str, Any], submitted: Any) -> None:
    texts = list(strings_in(body))
    for leaf in submitted_leaves(submitted):
        if not leaf.strip():
            continue
        if len(leaf) < 3:  # too short to search for inside messages: look for it as a value
            assert leaf not in texts, f"{leaf!r} is echoed in {body}"
            continue
        fragments = {leaf, leaf[:16]} if len(leaf) > 16 else {leaf}
        for fragment in fragments:
            assert not any(fragment in text for text in texts), f"{fragment!r} echoed: {body}"


async def read_settings(gateway: Gateway, tenant_id: str) -> dict[str, Any] | None:
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    settings: dict[str, Any] | None = data["integrationSettings"]
    return settings


async def select(gateway: Gateway, tenant_id: str, provider: str) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    assert data["selectEhrProvider"]["__typename"] == "SettingsSaved"


def epic(**fields: Any) -> dict[str, Any]:
    return {"epic": fields}


def athena(**fields: Any) -> dict[str, Any]:
    return {"athena": fields}


def cerner(**fields: Any) -> dict[str, Any]:
    return {"cerner": fields}


def ellkay(**fields: Any) -> dict[str, Any]:
    return {"ellkay": fields}


def at(member: str, *path: str) -> list[str]:
    return ["input", member, *path]


TOO_LONG_LONG_TEXT = ("too-long-comment-" * 120)[:2001]

REFUSED = [
    # Identifiers are absolute URIs (URN or http(s) URL); an urn:oid: is dotted digits.
    pytest.param(
        "EPIC", UPDATE_FHIR, epic(ssnIdentifier="unr:oid:1.1.111"),
        at("epic", "ssnIdentifier"), "INVALID_URN", id="epic-ssn-misspelled-urn",
    ),
    # URLs: absolute, http(s); https where the schema says so; no credentials.
    pytest.param(
        "EPIC", UPDATE_OAUTH, epic(oauthTokenUrl="http://auth.example.test/oauth2/token"),
        at("epic", "oauthTokenUrl"), "INVALID_URL", id="epic-token-url-plain-http",
    ),
    # A URL the gateway fetches: plain http is refused as the outbound client refuses it.
    pytest.param(
        "EPIC", UPDATE_EHR, epic(jkuServerUrl="http://keys.example.test/jwks.json"),
        at("epic", "jkuServerUrl"), "INSECURE_URL", id="epic-jku-plain-http",
    ),
    pytest.param(
        "ATHENA", CREATE_EXTERNAL_GATEWAY,
        {**CONNECTION, "baseUrl": "https://admin:hunter2pw@athena.example.test"},
        ["connection", "baseUrl"], "INVALID_URL", id="gateway-base-url-with-credentials",
    ),
    pytest.param(
        "CERNER", UPDATE_FHIR, cerner(systemForSendInteractiveRecords="Admission note"),
        at("cerner", "systemForSendInteractiveRecords"), "INVALID_URL",
        id="cerner-system-neither-url-nor-urn",
    ),
    # ISO 8601 durations.
    pytest.param(
        "ATHENA", UPDATE_EHR, athena(cacheProvidersDurationTtl="20 hours"),
        at("athena", "cacheProvidersDurationTtl"), "INVALID_DURATION", id="ttl-in-words",
    ),
    # Athena practice id: digits only, at most 20.
    pytest.param(
        "ATHENA", UPDATE_EHR, athena(practiceId="12a"),
        at("athena", "practiceId"), "NOT_DIGITS", id="practice-id-with-letter",
    ),
    pytest.param(
        "ATHENA", UPDATE_EHR, athena(practiceId="9" * 21),
        at("athena", "practiceId"), "TOO_LONG", id="practice-id-21-digits",
    ),
    # UTC offsets: ±HH:MM between -14:00 and +14:00.
    pytest.param(
        "ELLKAY", UPDATE_EHR, ellkay(accountTimeZoneOffset="+15:00"),
        at("ellkay", "accountTimeZoneOffset"), "INVALID_OFFSET", id="offset-hour-15",
    ),
    # The confirmation comment knows one placeholder.
    pytest.param(
        "ELLKAY", UPDATE_EHR, ellkay(appointmentConfirmationComment="{{DATE}}"),
        at("ellkay", "appointmentConfirmationComment"), "UNKNOWN_PLACEHOLDER",
        id="comment-unknown-placeholder",
    ),
    # Day counts: 0 to 36,500; the slot search maximum may not exceed the total.
    pytest.param(
        "EPIC", UPDATE_FHIR, epic(dayRangeForTemporalSearches=-1),
        at("epic", "dayRangeForTemporalSearches"), "OUT_OF_RANGE", id="epic-day-range-negative",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(epicMaximumSlotSearchDateRangeInDays=100),
        at("epic", "epicMaximumSlotSearchDateRangeInDays"), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL",
        id="epic-slot-search-above-default-total",
    ),
    # Mappings have unique names.
    pytest.param(
        "EPIC", UPDATE_EHR,
        epic(quickCrmTopicMapping=[
            {"name": "refill-intent", "value": "intent-101"},
            {"name": "refill-intent", "value": "intent-202"},
        ]),
        at("epic", "quickCrmTopicMapping"), "DUPLICATE_NAME", id="quick-crm-duplicate-name",
    ),
    # Custom headers: token names, unique case-insensitively; values without line breaks.
    pytest.param(
        "CERNER", UPDATE_HEADERS, cerner(customHeaders=[{"name": "X Trace", "value": "trace"}]),
        at("cerner", "customHeaders", "0", "name"), "INVALID_HEADER_NAME",
        id="header-name-with-space",
    ),
    pytest.param(
        "ELLKAY", UPDATE_HEADERS,
        ellkay(customHeaders=[{"name": "X-Site", "value": "site-7\r\nX-Injected: yes"}]),
        at("ellkay", "customHeaders", "0", "value"), "INVALID_HEADER_VALUE",
        id="header-value-with-line-break",
    ),
    # Category filter codes.
    pytest.param(
        "EPIC", UPDATE_FHIR, epic(categoryFilterArray=["409063004", "40  90 63"]),
        at("epic", "categoryFilterArray", "1"), "INVALID_CODE",
        id="category-code-with-double-space",
    ),
    pytest.param(
        "ATHENA", UPDATE_FHIR, athena(categoryFilterArray=[f"code-{n:03}" for n in range(101)]),
        at("athena", "categoryFilterArray"), "TOO_MANY", id="category-codes-101",
    ),
    # SOAP credentials are set together.
    pytest.param(
        "EPIC", UPDATE_EHR, epic(soapUsername="soap-user-marker"),
        at("epic", "soapUsername"), "SOAP_CREDENTIALS_INCOMPLETE", id="soap-username-alone",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(soapPassword="soap-pass-marker"),
        at("epic", "soapPassword"), "SOAP_CREDENTIALS_INCOMPLETE", id="soap-password-alone",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(soapUsername="soap-user-marker", soapPassword=""),
        at("epic", "soapPassword"), "TOO_SHORT", id="soap-password-empty",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(soapUsername="svc", soapPassword="pw\ud800-marker"),
        at("epic", "soapPassword"), "INVALID_TEXT", id="secret-lone-surrogate",
    ),
    # Lengths: ShortText 256, LongText 2000; empty strings are refused (null clears).
    pytest.param(
        "CERNER", CREATE_EXTERNAL_GATEWAY, {**CONNECTION, "description": TOO_LONG_LONG_TEXT},
        ["connection", "description"], "TOO_LONG", id="gateway-description-2001",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(context=""),
        at("epic", "context"), "TOO_SHORT", id="epic-context-empty",
    ),
    # The input member must be the active provider's; a provider must be selected first.
    pytest.param(
        "EPIC", UPDATE_FHIR, athena(useBatch=True, categoryFilterArray=["member-code-1"]),
        at("athena"), "WRONG_PROVIDER", id="athena-member-for-epic",
    ),
    pytest.param(
        "ATHENA", UPDATE_OAUTH, epic(epicClientId="oauth-client-marker"),
        at("epic"), "WRONG_PROVIDER", id="epic-oauth-for-athena",
    ),
    pytest.param(
        None, UPDATE_EHR, epic(context="Scheduling"),
        ["provider"], "PROVIDER_NOT_SELECTED", id="ehr-block-before-provider",
    ),
    pytest.param(
        None, CREATE_EXTERNAL_GATEWAY, CONNECTION,
        ["provider"], "PROVIDER_NOT_SELECTED", id="gateway-before-provider",
    ),
    # Patient restriction: a boolean CEL expression over `age`.
    pytest.param(
        "EPIC", UPDATE_PATIENT_RESTRICTION, "age < 'eighteen-years-marker",
        ["expression"], "INVALID_EXPRESSION", id="restriction-syntax-error",
    ),
    pytest.param(
        "EPIC", UPDATE_PATIENT_RESTRICTION, "patient_age < 18 || age < 0",
        ["expression"], "UNKNOWN_VARIABLE", id="restriction-unknown-variable",
    ),
    pytest.param(
        "EPIC", UPDATE_PATIENT_RESTRICTION, "age + 1000",
        ["expression"], "NOT_BOOLEAN", id="restriction-not-boolean",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "document", "value", "path", "code"), REFUSED)
async def test_a_refused_value_is_reported_at_its_path_not_echoed_and_not_stored(
    gateway: Gateway,
    tenant_id: str,
    provider: str | None,
    document: str,
    value: Any,
    path: list[str],
    code: str,
) -> None:
    if provider is not None:
        await select(gateway, tenant_id, provider)
    before = await read_settings(gateway, tenant_id)

    body = await gateway.post(document, tenantId=tenant_id, **variables(document, value))

    assert "errors" not in body, body
    result = result_of(body["data"])
    assert result["__typename"] == "ValidationFailed"
    assert [(error["path"], error["code"]) for error in result["errors"]] == [(path, code)]
    assert all(error["message"] for error in result["errors"])
    assert_not_echoed(body, value)
    assert await read_settings(gateway, tenant_id) == before


ACCEPTED = [
    pytest.param(
        "EPIC", UPDATE_FHIR,
        epic(
            mrnIdentifier="urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
            selfServiceIdentifier="urn:epic:self-service",
        ),
        id="epic-urns",
    ),
    pytest.param(
        "CERNER", UPDATE_FHIR,
        cerner(systemForSendInteractiveRecords="https://fhir.cerner.com/ec2458f2/codeSet/72"),
        id="cerner-system-https-url",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR,
        epic(
            jkuServerUrl="https://keys.example.test/jwks.json",
            jwtIssuerUrl="http://issuer.example.test/oauth2",
        ),
        id="epic-jku-https-issuer-http",  # the issuer is compared, never fetched
    ),
    pytest.param(
        "EPIC", UPDATE_OAUTH, epic(oauthTokenUrl="https://auth.example.test/oauth2/token"),
        id="epic-token-url-https",
    ),
    pytest.param("ATHENA", CREATE_EXTERNAL_GATEWAY, CONNECTION, id="gateway-base-url-https"),
    pytest.param(
        "ATHENA", UPDATE_EHR,
        athena(cacheProvidersDurationTtl="PT48H", cacheDepartmentsDurationTtl="P1DT12H"),
        id="ttl-iso-8601",
    ),
    pytest.param("ELLKAY", UPDATE_EHR, ellkay(accountTimeZoneOffset="+14:00"), id="offset-max"),
    pytest.param(
        "ELLKAY", UPDATE_EHR, ellkay(appointmentConfirmationComment="Confirmed on {{DATETIME}}"),
        id="comment-with-datetime",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR,
        epic(epicMaximumSlotSearchDateRangeInDays=100, maxAllowedSlotSearchDateRangeDays=120),
        id="slot-search-100-of-120",
    ),
    pytest.param(
        "ATHENA", UPDATE_HEADERS,
        athena(customHeaders=[
            {"name": "X-Trace-Id", "value": "trace one; two"},
            {"name": "X-Site", "value": "site-7"},
        ]),
        id="headers-unique-token-names",
    ),
    pytest.param(
        "EPIC", UPDATE_FHIR, epic(categoryFilterArray=["409063004", "LAB:1.2-x_y"]),
        id="category-codes",
    ),
    pytest.param(
        "EPIC", UPDATE_PATIENT_RESTRICTION, "age >= 13 && age < 18", id="restriction-teens",
    ),
]  # fmt: skip


def sent_fields(document: str, value: Any) -> dict[str, Any]:
    if document == UPDATE_PATIENT_RESTRICTION:
        return {"expression": value}
    if document == CREATE_EXTERNAL_GATEWAY:
        return dict(value)
    (member,) = value.values()
    return dict(member)


@pytest.mark.parametrize(("provider", "document", "value"), ACCEPTED)
async def test_an_accepted_value_is_stored_and_read_back(
    gateway: Gateway, tenant_id: str, provider: str, document: str, value: Any
) -> None:
    await select(gateway, tenant_id, provider)

    data = await gateway.execute(document, tenantId=tenant_id, **variables(document, value))

    assert result_of(data)["__typename"] == "SettingsSaved"
    settings = await read_settings(gateway, tenant_id)
    assert settings is not None
    assert settings["version"] == 2
    block = settings[BLOCK[document]]
    sent = sent_fields(document, value)
    assert {name: block[name] for name in sent} == sent


async def test_soap_username_and_password_saved_together_are_accepted(
    gateway: Gateway, tenant_id: str
) -> None:
    await select(gateway, tenant_id, "EPIC")
    credentials = epic(soapUsername="soap-refills", soapPassword="Refill-pass-42")

    data = await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input=credentials)

    ehr = data["updateEhrSettings"]["settings"]["ehr"]
    assert ehr["soapUsername"] == "soap-refills"
    assert ehr["soapPassword"]["isSet"] is True


async def test_clearing_only_the_soap_password_is_refused(gateway: Gateway, tenant_id: str) -> None:
    await select(gateway, tenant_id, "EPIC")
    credentials = epic(soapUsername="soap-refills", soapPassword="Refill-pass-42")
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input=credentials)
    before = await read_settings(gateway, tenant_id)

    data = await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input=epic(soapPassword=None))

    errors = data["updateEhrSettings"]["errors"]
    assert [(error["path"], error["code"]) for error in errors] == [
        (at("epic", "soapPassword"), "SOAP_CREDENTIALS_INCOMPLETE")
    ]
    assert await read_settings(gateway, tenant_id) == before


async def test_lowering_the_total_below_the_stored_slot_search_maximum_is_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    await select(gateway, tenant_id, "EPIC")
    wide = epic(epicMaximumSlotSearchDateRangeInDays=100, maxAllowedSlotSearchDateRangeDays=120)
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input=wide)
    before = await read_settings(gateway, tenant_id)

    data = await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input=epic(maxAllowedSlotSearchDateRangeDays=None)
    )

    errors = data["updateEhrSettings"]["errors"]
    assert [(error["path"], error["code"]) for error in errors] == [
        (at("epic", "maxAllowedSlotSearchDateRangeDays"), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL")
    ]
    assert await read_settings(gateway, tenant_id) == before


async def test_every_refused_field_of_a_connection_is_reported_at_once(
    gateway: Gateway, tenant_id: str
) -> None:
    await select(gateway, tenant_id, "CERNER")
    connection = {**CONNECTION, "name": "", "baseUrl": "ftp://cerner.example.test"}

    data = await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=connection)

    errors = data["createExternalGateway"]["errors"]
    assert sorted((error["path"], error["code"]) for error in errors) == [
        (["connection", "baseUrl"], "INVALID_URL"),
        (["connection", "name"], "TOO_SHORT"),
    ]
    assert (await read_settings(gateway, tenant_id) or {})["externalGateway"] is None


WRONG_TYPES = [
    pytest.param(
        "EPIC", UPDATE_FHIR, epic(dayRangeForTemporalSearches=MARKER), id="string-for-int",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(receiveCommunicationVersion=MARKER), id="unknown-enum-value",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(soapUsername="soap-refills", soapPassword=[MARKER]),
        id="list-for-string",
    ),
    pytest.param(
        "EPIC", UPDATE_FHIR, epic(dayRangeForTemporalSearches=f"7; {MARKER}"),
        id="string-with-semicolon-for-int",
    ),
    pytest.param(
        "EPIC", UPDATE_EHR, epic(soapUsername="soap-refills", soapPasword=MARKER),
        id="misspelled-field-name",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "document", "value"), WRONG_TYPES)
async def test_a_value_of_the_wrong_graphql_type_is_refused_without_echo_or_storage(
    gateway: Gateway, tenant_id: str, provider: str, document: str, value: Any
) -> None:
    await select(gateway, tenant_id, provider)
    before = await read_settings(gateway, tenant_id)

    body = await gateway.post(document, tenantId=tenant_id, **variables(document, value))

    assert body.get("data") is None
    assert body["errors"] and all(error["message"] for error in body["errors"])
    assert not [text for text in strings_in(body) if MARKER in text], body
    assert await read_settings(gateway, tenant_id) == before


async def test_a_refused_request_leaves_no_submitted_value_in_the_log(
    gateway: Gateway, tenant_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    await select(gateway, tenant_id, "EPIC")
    caplog.set_level(logging.DEBUG)

    await gateway.post(UPDATE_EHR, tenantId=tenant_id, input=epic(soapPasword=MARKER))
    await gateway.post(UPDATE_FHIR, tenantId=tenant_id, input=epic(useBatch=MARKER))

    assert "soapPasword" in caplog.text  # the refusal is logged, by field name ...
    assert MARKER not in caplog.text  # ... without the value


async def test_sending_the_same_secret_again_stores_no_new_version(
    gateway: Gateway, tenant_id: str
) -> None:
    await select(gateway, tenant_id, "EPIC")
    first = result_of(
        await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id, input=epic(soapUsername="svc", soapPassword="pw-1")
        )
    )
    again = result_of(
        await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input=epic(soapPassword="pw-1"))
    )
    assert again["settings"]["version"] == first["settings"]["version"]
    changed = result_of(
        await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input=epic(soapPassword="pw-2"))
    )
    assert changed["settings"]["version"] == first["settings"]["version"] + 1
