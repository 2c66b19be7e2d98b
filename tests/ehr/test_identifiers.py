"""Deployment-wide identifier defaults (ehr/identifiers.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ehr_gateway.ehr.athena import AthenaFhirSettings
from ehr_gateway.ehr.cerner import CernerFhirSettings
from ehr_gateway.ehr.epic import EpicFhirSettings
from ehr_gateway.ehr.identifiers import (
    US_SSN_OID,
    IdentifierDefaults,
    defaulted_fields,
    with_identifier_defaults,
)

DEFAULTS = IdentifierDefaults(
    mrn_identifier="urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
    practitioner_external_urn="urn:oid:1.2.9",
    location_external_urn="urn:oid:1.2.10",
    self_service_identifier="urn:epic:self-service",
)


def test_the_ssn_default_is_the_us_ssn_oid() -> None:
    assert IdentifierDefaults().ssn_identifier == US_SSN_OID == "urn:oid:2.16.840.1.113883.4.1"
    assert IdentifierDefaults().mrn_identifier is None


def test_a_deployment_default_must_be_an_absolute_uri() -> None:
    with pytest.raises(ValidationError) as raised:
        IdentifierDefaults(mrn_identifier="1.2.3")
    assert raised.value.errors()[0]["type"] == "invalid_urn"


def test_unset_identifiers_take_the_defaults_and_the_tenants_own_win() -> None:
    fhir = EpicFhirSettings(mrn_identifier="urn:oid:2.7")
    effective = with_identifier_defaults(fhir, DEFAULTS)
    assert effective.mrn_identifier == "urn:oid:2.7"
    assert effective.ssn_identifier == US_SSN_OID
    assert effective.practitioner_external_urn == "urn:oid:1.2.9"
    assert effective.self_service_identifier == "urn:epic:self-service"
    assert fhir.ssn_identifier is None  # the stored block is not changed


def test_only_the_identifiers_a_block_has_are_filled() -> None:
    assert set(defaulted_fields(CernerFhirSettings(), DEFAULTS)) == {
        "ssn_identifier", "mrn_identifier", "self_service_identifier",
    }  # fmt: skip
    assert defaulted_fields(AthenaFhirSettings(), DEFAULTS) == {}


def test_a_block_with_nothing_to_fill_is_returned_as_it_is() -> None:
    fhir = AthenaFhirSettings()
    assert with_identifier_defaults(fhir, DEFAULTS) is fhir
