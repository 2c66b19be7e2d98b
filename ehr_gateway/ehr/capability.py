"""What an EHR's FHIR server says about itself: its CapabilityStatement (GET [base]/metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Capability:
    fhir_version: str | None
    software_name: str | None
    software_version: str | None


def read_capability(document: Any) -> Capability:
    """The parts of a CapabilityStatement the gateway reports; ValueError if it is not one."""
    if not isinstance(document, dict) or document.get("resourceType") != "CapabilityStatement":
        raise ValueError("the metadata endpoint did not return a FHIR CapabilityStatement")
    software = document.get("software")
    software = software if isinstance(software, dict) else {}

    def text(value: Any) -> str | None:
        return value[:256] if isinstance(value, str) else None

    return Capability(
        fhir_version=text(document.get("fhirVersion")),
        software_name=text(software.get("name")),
        software_version=text(software.get("version")),
    )
