"""An athenahealth customer's own values: the platform's FHIR base, a practice id, cache TTLs as
ISO 8601 durations, the custom field and patient case settings; and what readiness says of
them."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.documents import UPDATE_EHR, UPDATE_FHIR
from tests.ehr.customer_values import (
    ATHENA_EHR,
    ATHENA_FHIR,
    ATHENA_FHIR_BASE_URL,
    connected,
    missing_paths,
    read,
    readiness,
    refusal,
    save_block,
    saved_block,
    select,
    warning_codes,
)


async def test_every_athena_block_is_saved_and_read_back_as_typed(
    gateway: Gateway, tenant_id: str
) -> None:
    await connected(gateway, tenant_id, "ATHENA", ATHENA_FHIR_BASE_URL)

    await saved_block(gateway, tenant_id, UPDATE_FHIR, "athena", ATHENA_FHIR)
    await saved_block(gateway, tenant_id, UPDATE_EHR, "athena", ATHENA_EHR)
    settings = await read(gateway, tenant_id)

    assert {key: settings["fhir"][key] for key in ATHENA_FHIR} == ATHENA_FHIR
    assert {key: settings["ehr"][key] for key in ATHENA_EHR} == ATHENA_EHR


async def test_a_complete_athena_configuration_is_ready_without_warnings(
    gateway: Gateway, tenant_id: str
) -> None:
    await connected(gateway, tenant_id, "ATHENA", ATHENA_FHIR_BASE_URL)
    await saved_block(gateway, tenant_id, UPDATE_EHR, "athena", ATHENA_EHR)

    found = await readiness(gateway, tenant_id)

    assert found["ready"] is True, found
    assert warning_codes(found) == []


async def test_patient_cases_without_a_case_class_or_department_are_named(
    gateway: Gateway, tenant_id: str
) -> None:
    """The engineer chose to send data as patient cases but has not heard back from the
    practice about the case class and department yet."""
    await connected(gateway, tenant_id, "ATHENA", ATHENA_FHIR_BASE_URL)
    incomplete = {
        "practiceId": "195900",
        "sendDataDecision": "PATIENT_CASE",
        "sendDataAfterMissedCall": True,
    }
    await saved_block(gateway, tenant_id, UPDATE_EHR, "athena", incomplete)

    found = await readiness(gateway, tenant_id)

    assert missing_paths(found) == [("ehr", "caseClassForSendData")]
    assert warning_codes(found) == [
        (("ehr", "departmentIdForSendInteractiveRecords"), "REQUIRED_TO_SEND_DATA")
    ]


async def test_a_practice_id_with_leading_zeros_keeps_them(
    gateway: Gateway, tenant_id: str
) -> None:
    await select(gateway, tenant_id, "ATHENA")

    stored = await saved_block(gateway, tenant_id, UPDATE_EHR, "athena", {"practiceId": "0195900"})

    assert stored["ehr"]["practiceId"] == "0195900"


async def test_athenas_fhir_form_of_the_practice_id_is_refused_saying_digits_only(
    gateway: Gateway, tenant_id: str
) -> None:
    """athenahealth's FHIR API names a practice a-1.Practice-195900; the setting is the
    number alone, and the error says so at the field."""
    await select(gateway, tenant_id, "ATHENA")

    result = await save_block(
        gateway, tenant_id, UPDATE_EHR, "athena", {"practiceId": "a-1.Practice-195900"}
    )

    assert refusal(result) == [(("input", "athena", "practiceId"), "NOT_DIGITS")]
    assert "digits" in result["errors"][0]["message"]


async def test_an_emptied_ttl_reads_back_as_the_specs_default(
    gateway: Gateway, tenant_id: str
) -> None:
    """The spec: an empty TTL means 20 hours; the page shows what applies."""
    await select(gateway, tenant_id, "ATHENA")

    stored = await saved_block(
        gateway,
        tenant_id,
        UPDATE_EHR,
        "athena",
        {"cacheProvidersEnabled": True, "cacheProvidersDurationTtl": ""},
    )

    assert stored["ehr"]["cacheProvidersDurationTtl"] == "PT20H"
