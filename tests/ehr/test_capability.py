"""What a FHIR server says about itself (ehr/capability.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ehr_gateway.ehr.capability import Capability, read_capability


def test_a_capability_statement_names_its_fhir_version_and_software() -> None:
    document = {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "software": {"name": "Epic", "version": "November 2025"},
    }
    assert read_capability(document) == Capability("4.0.1", "Epic", "November 2025")


def test_what_it_does_not_say_or_says_oddly_is_none_and_text_is_capped() -> None:
    document = {"resourceType": "CapabilityStatement", "fhirVersion": 4, "software": "Epic",
                "extra": "ignored"}  # fmt: skip
    assert read_capability(document) == Capability(None, None, None)
    long = {"resourceType": "CapabilityStatement", "fhirVersion": "4" * 1000}
    assert read_capability(long).fhir_version == "4" * 256


@pytest.mark.parametrize(
    "document", [None, [], "CapabilityStatement", {"resourceType": "Patient"}, {}]
)
def test_anything_else_is_not_a_capability_statement(document: Any) -> None:
    with pytest.raises(ValueError, match="CapabilityStatement"):
        read_capability(document)
