"""Cerner's settings (ehr/cerner.py): its FHIR block, and an EHR block with nothing in it."""

from __future__ import annotations

import pytest

from ehr_gateway.ehr.cerner import CernerFhirSettings, CernerSettings
from tests.ehr.refusals import refusal


def test_the_fhir_defaults_are_the_specs() -> None:
    fhir = CernerFhirSettings()
    assert fhir.url_prefix is None
    assert fhir.ssn_identifier is None and fhir.mrn_identifier is None
    assert not any(
        (fhir.legal_sex_search, fhir.use_batch, fhir.use_gt_in_date_range,
         fhir.use_lt_in_date_range, fhir.use_telecom, fhir.use_patient_id_as_identifier,
         fhir.bypass_appointment_read)
    )  # fmt: skip
    assert fhir.category_filter_array == []
    assert fhir.day_range_for_temporal_searches is None


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("ssnIdentifier", "unr:oid:1.1.111", "INVALID_URN"),
        ("mrnIdentifier", "urn:oid:1.2.x", "INVALID_URN"),
        ("selfServiceIdentifier", "urn:flag:", "INVALID_URN"),
        ("systemForSendInteractiveRecords", "ftp://codes.example.test", "INVALID_URL"),
        ("systemForSendInteractiveRecords", "Admission note", "INVALID_URL"),
        ("systemForSendInteractiveRecords", "urn:oid:1.2.x", "INVALID_URN"),
        ("dayRangeForTemporalSearches", -1, "OUT_OF_RANGE"),
        ("serviceTypeIdentifier", "s" * 257, "TOO_LONG"),
        ("categoryFilterArray", ["a,b"], "INVALID_CODE"),
    ],
)
def test_a_fhir_setting_is_refused_at_its_path(field: str, value: object, code: str) -> None:
    path, found = refusal(CernerFhirSettings, {field: value})
    assert (path[0], found) == (field, code)


@pytest.mark.parametrize(
    "system",
    ["https://fhir.cerner.com/ec2458f2/codeSet/72", "http://loinc.org",
     "urn:oid:2.16.840.1.113883.6.1"],
)  # fmt: skip
def test_the_system_for_send_interactive_records_is_a_url_or_a_urn(system: str) -> None:
    fhir = CernerFhirSettings.model_validate({"systemForSendInteractiveRecords": system})
    assert fhir.system_for_send_interactive_records == system


def test_the_cerner_block_has_no_settings_and_says_so() -> None:
    assert CernerSettings().has_settings is False
    assert CernerSettings().model_dump(by_alias=True) == {"hasSettings": False}
    assert refusal(CernerSettings, {"anything": 1}) == (("anything",), "UNKNOWN_FIELD")
