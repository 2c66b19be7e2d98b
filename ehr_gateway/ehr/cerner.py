"""Cerner: FHIR settings. The spec defines no Cerner-specific settings."""

from __future__ import annotations

from pydantic import Field, computed_field

from ehr_gateway.ehr.fields import SHORT_TEXT_MAX, SettingsModel, ShortText, SystemUri
from ehr_gateway.ehr.shared import (
    CategoryFilterArray,
    DayRangeForTemporalSearches,
    LegalSexSearch,
    MrnIdentifier,
    SelfServiceIdentifier,
    SsnIdentifier,
    UrlPrefix,
    UseBatch,
    UseGtInDateRange,
    UseLtInDateRange,
    UseTelecom,
)

_CAP = f" At most {SHORT_TEXT_MAX} characters."


class CernerFhirSettings(SettingsModel):
    """Parameters of the FHIR APIs the product uses with Cerner."""

    url_prefix: UrlPrefix = None
    ssn_identifier: SsnIdentifier = None
    mrn_identifier: MrnIdentifier = None
    service_type_identifier: ShortText | None = Field(
        default=None,
        description="Service type identifier: a parameter of the FHIR ServiceRequest API, "
        "provided by the customer or sourced from the EHR." + _CAP,
    )
    self_service_identifier: SelfServiceIdentifier = None
    legal_sex_search: LegalSexSearch = False
    use_batch: UseBatch = False
    day_range_for_temporal_searches: DayRangeForTemporalSearches = None
    use_gt_in_date_range: UseGtInDateRange = False
    use_lt_in_date_range: UseLtInDateRange = False
    use_telecom: UseTelecom = False
    use_patient_id_as_identifier: bool = Field(
        default=False,
        description="Use patient id as identifier: identify a patient by external identifiers, "
        "such as the MRN or SSN.",
    )
    bypass_appointment_read: bool = Field(
        default=False,
        description="Bypass appointment read: skip reading appointment details before "
        "confirming or canceling it.",
    )
    category_filter_array: CategoryFilterArray = []
    system_for_send_interactive_records: SystemUri | None = Field(
        default=None,
        description="System for send interactive records: the coding system of the document sent "
        "to the EHR, an absolute URI: an http(s) URL such as "
        "https://fhir.cerner.com/<id>/codeSet/72 or a URN such as urn:oid:2.16.840.1.113883.6.1. "
        "It names a code system and is never fetched.",
    )
    code_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Code for send interactive records: the document code sent to the EHR." + _CAP,
    )
    display_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Display for send interactive records, e.g. Admission Note Physician." + _CAP,
    )
    text_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Text for send interactive records, e.g. Admission Note Physician." + _CAP,
    )
    author_reference_id_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Author reference id for send interactive records, e.g. 1." + _CAP,
    )
    title_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Title for send interactive records, e.g. Conversation details." + _CAP,
    )
    author_reference_type_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Author reference type for send interactive records, e.g. Practitioner." + _CAP,
    )


class CernerSettings(SettingsModel):
    """Cerner-specific settings. The spec defines none yet; the block exists so that the EHR
    settings union has a member for every EHR."""

    @computed_field(  # type: ignore[prop-decorator]
        description="Always false: the spec defines no Cerner-specific settings yet."
    )
    @property
    def has_settings(self) -> bool:
        return False
