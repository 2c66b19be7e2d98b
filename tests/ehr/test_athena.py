"""Athena's settings (ehr/athena.py): the FHIR block and the Athena block."""

from __future__ import annotations

import pytest

from ehr_gateway.ehr.athena import (
    DEFAULT_CACHE_TTL,
    AthenaFhirSettings,
    AthenaSettings,
    SendDataDecision,
)
from tests.ehr.refusals import refusal


def test_the_defaults_are_the_specs() -> None:
    athena = AthenaSettings()
    assert athena.cache_providers_duration_ttl == DEFAULT_CACHE_TTL == "PT20H"
    assert athena.cache_departments_duration_ttl == "PT20H"
    assert athena.practice_id is None and athena.send_data_decision is None
    assert athena.custom_field_mapping == []
    assert not any(
        (athena.cache_providers_enabled, athena.cache_departments_enabled,
         athena.patient_full_ssn, athena.patient_mrn, athena.custom_field_enabled,
         athena.create_case_automatically_add_closed_status, athena.send_recording_url,
         athena.send_data_after_missed_call)
    )  # fmt: skip
    fhir = AthenaFhirSettings()
    assert fhir.use_batch is False and fhir.category_filter_array == []


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_cache_ttl_means_the_default_20_hours(empty: str) -> None:
    athena = AthenaSettings.model_validate(
        {"cacheProvidersDurationTtl": empty, "cacheDepartmentsDurationTtl": empty}
    )
    assert athena.cache_providers_duration_ttl == athena.cache_departments_duration_ttl == "PT20H"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("cacheProvidersDurationTtl", "20 hours", "INVALID_DURATION"),
        ("cacheProvidersDurationTtl", "P", "INVALID_DURATION"),
        ("cacheDepartmentsDurationTtl", "P1DT", "INVALID_DURATION"),
        ("cacheDepartmentsDurationTtl", "P101Y", "DURATION_TOO_LONG"),
        ("cacheProvidersDurationTtl", None, "INVALID_TYPE"),
        ("practiceId", "12a", "NOT_DIGITS"),
        ("practiceId", "9" * 21, "TOO_LONG"),
        ("sendDataDecision", "EMAIL", "INVALID_CHOICE"),
        ("caseClassForSendData", "c" * 257, "TOO_LONG"),
    ],
)
def test_an_athena_setting_is_refused_at_its_path(field: str, value: object, code: str) -> None:
    assert refusal(AthenaSettings, {field: value}) == ((field,), code)


def test_a_practice_id_is_digits() -> None:
    assert AthenaSettings(practice_id="195900").practice_id == "195900"


def test_the_send_data_decisions() -> None:
    assert [d.value for d in SendDataDecision] == ["PHONE_MESSAGE", "PATIENT_CASE"]


def test_custom_field_names_are_unique() -> None:
    mapping = [{"name": "field-ssn", "value": "ssn"}, {"name": "field-ssn", "value": "mrn"}]
    assert refusal(AthenaSettings, {"customFieldMapping": mapping}) == (
        ("customFieldMapping",), "DUPLICATE_NAME",
    )  # fmt: skip


def test_category_codes_are_tokens_and_at_most_100() -> None:
    assert refusal(AthenaFhirSettings, {"categoryFilterArray": [f"c{n}" for n in range(101)]}) == (
        ("categoryFilterArray",), "TOO_MANY",
    )  # fmt: skip
    assert refusal(AthenaFhirSettings, {"categoryFilterArray": ["a|b|c"]}) == (
        ("categoryFilterArray", "0"), "INVALID_CODE",
    )  # fmt: skip


def test_athena_has_no_identifier_settings() -> None:
    assert refusal(AthenaFhirSettings, {"ssnIdentifier": "urn:oid:1.2.3"}) == (
        ("ssnIdentifier",), "UNKNOWN_FIELD",
    )  # fmt: skip
