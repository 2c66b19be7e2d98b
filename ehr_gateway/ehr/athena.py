"""Athena: FHIR settings and Athena settings."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ehr_gateway.ehr.fields import (
    SHORT_TEXT_MAX,
    DigitsId,
    IsoDuration,
    Mapping,
    SettingsModel,
    ShortText,
)
from ehr_gateway.ehr.shared import (
    CategoryFilterArray,
    SendDataAfterMissedCall,
    SendRecordingUrl,
    UseBatch,
)

_CAP = f" At most {SHORT_TEXT_MAX} characters."
DEFAULT_CACHE_TTL = "PT20H"


def _empty_means_default(value: Any) -> Any:
    # The spec: "If the field is empty, the default value is 20 hours." A form's cleared input
    # sends "", which is that, not a too-short duration.
    if isinstance(value, str) and not value.strip():
        return DEFAULT_CACHE_TTL
    return value


CacheTtl = Annotated[IsoDuration, BeforeValidator(_empty_means_default)]
_TTL_FORMS = (
    ", as a positive ISO 8601 duration (e.g. PT48H, P2D, PT0.5H; only the last unit may have a "
    'fraction), at most a century (P100Y). Empty ("") or null means the default, PT20H.'
)


class AthenaFhirSettings(SettingsModel):
    """Parameters of the FHIR APIs the product uses with Athena."""

    use_batch: UseBatch = False
    category_filter_array: CategoryFilterArray = []


class SendDataDecision(Enum):
    """How data is sent to Athena."""

    PHONE_MESSAGE = "PHONE_MESSAGE"
    PATIENT_CASE = "PATIENT_CASE"


class AthenaSettings(SettingsModel):
    """Parameters specific to Athena."""

    practice_id: DigitsId | None = Field(
        default=None,
        description="The practice_id schema: the Athena account identifier, digits only, "
        "provided by the customer (at most 20 digits). Mandatory.",
    )
    patient_mrn_custom_field_id: ShortText | None = Field(
        default=None,
        description="The patient_mrn_custom_field_id schema: when the Athena patient response "
        "has a custom field with this ID, the patient is returned with an MRN from that field's "
        "value. Only applies when Patient mrn is on." + _CAP,
    )
    cache_providers_enabled: bool = Field(
        default=False,
        description="Cache providers enabled: cache provider details retrieved from the Athena "
        "API endpoint /providers/{provider_id}.",
    )
    cache_providers_duration_ttl: CacheTtl = Field(
        default=DEFAULT_CACHE_TTL,
        description="Cache providers duration TTL: how long the providers cache is valid"
        + _TTL_FORMS
        + " Only applies when the providers cache is on.",
    )
    cache_departments_enabled: bool = Field(
        default=False,
        description="Cache departments enabled: cache department information by ID instead of "
        "calling Athena's API each time.",
    )
    cache_departments_duration_ttl: CacheTtl = Field(
        default=DEFAULT_CACHE_TTL,
        description="Cache departments duration TTL: how long the departments cache is valid"
        + _TTL_FORMS
        + " Only applies when the departments cache is on.",
    )
    patient_full_ssn: bool = Field(
        default=False,
        description="Patient full ssn: the patient SSN comes from the patient response.",
    )
    patient_mrn: bool = Field(
        default=False,
        description="Patient mrn: switch for the patient mrn custom field id.",
    )
    appointment_confirmation_id: ShortText | None = Field(
        default=None,
        description="Appointment confirmation id: required by the Athena API when the account "
        "has Athena Appointment Confirmation enabled. It is the appointment confirmation ID (a "
        "resource ID in Athena), not the appointment ID, e.g. 2." + _CAP,
    )
    department_id_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Department id for send interactive records: required when sending data to "
        "the EHR; provided by the customer or by Athena." + _CAP,
    )
    custom_field_enabled: bool = Field(
        default=False,
        description="Custom field enabled: enables the custom field mapping.",
    )
    custom_field_mapping: Mapping = Field(
        default_factory=list,
        description="The custom field mapping: custom fields required for patient search, e.g. "
        "name 1, value ssn. Names are unique. Only applies when Custom field enabled is on.",
    )
    create_case_automatically_add_closed_status: bool = Field(
        default=False,
        description="Create a Case: Automatically add a closed status. If off, patient cases "
        "must be closed manually.",
    )
    send_data_decision: SendDataDecision | None = Field(
        default=None,
        description="The decision to send data to the EHR: by creating a new patient case "
        "(PATIENT_CASE) or with the phone message API (PHONE_MESSAGE).",
    )
    case_class_for_send_data: ShortText | None = Field(
        default=None,
        description="The case class used when sending data to the EHR. Required when the send "
        "data decision is PATIENT_CASE." + _CAP,
    )
    send_recording_url: SendRecordingUrl = False
    send_data_after_missed_call: SendDataAfterMissedCall = False
