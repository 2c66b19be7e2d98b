"""Cerner: FHIR settings. The spec defines no Cerner-specific settings."""

from __future__ import annotations

from pydantic import Field, computed_field

from ehr.fields import SHORT_TEXT_MAX, Code, Days, SettingsModel, ShortText, SystemUri, Urn

_CAP = f" At most {SHORT_TEXT_MAX} characters."


class CernerFhirSettings(SettingsModel):
    """Parameters of the FHIR APIs the product uses with Cerner."""

    url_prefix: ShortText | None = Field(
        default=None,
        description="The url_prefix schema: an optional prefix between the base URL and the FHIR "
        "object, e.g. /FHIR/R4." + _CAP,
    )
    ssn_identifier: Urn | None = Field(
        default=None,
        description="The ssn identifier: Social Security Number (SSN) identifier, a URN. A "
        "deployment-wide default (the US SSN OID urn:oid:2.16.840.1.113883.4.1 unless configured "
        "otherwise) applies while it is not set. Mandatory.",
    )
    mrn_identifier: Urn | None = Field(
        default=None,
        description="The mrn identifier: Medical Record Number (MRN) identifier, a URN. The "
        "deployment-wide default applies while it is not set. Mandatory.",
    )
    service_type_identifier: ShortText | None = Field(
        default=None,
        description="Service type identifier: a parameter of the FHIR ServiceRequest API, "
        "provided by the customer or sourced from the EHR." + _CAP,
    )
    self_service_identifier: Urn | None = Field(
        default=None,
        description="Self service identifier: used as a Patient flag to determine if the EHR "
        "self-service is active. The deployment-wide default applies while it is not set.",
    )
    legal_sex_search: bool = Field(
        default=False,
        description="Legal Sex Search: use gender as a parameter in searches and data handling, "
        "rather than relying solely on legal sex.",
    )
    use_batch: bool = Field(
        default=False,
        description="Use Batch flag: group several individual requests into a single bundle "
        "request; the server processes each entry separately, but the client makes one call.",
    )
    day_range_for_temporal_searches: Days | None = Field(
        default=None,
        description="Day range to be used for temporal searches: the number of days in the "
        "future or past for which appointments, encounters and other events are searched. Empty "
        "means no limit.",
    )
    use_gt_in_date_range: bool = Field(
        default=False,
        description="Use 'gt' in date range: exclude the start date (greater than instead of "
        "greater than or equal to). A start date of Jan 1, 2025 returns entries from Jan 2, 2025.",
    )
    use_lt_in_date_range: bool = Field(
        default=False,
        description="Use 'lt' in date range: exclude the end date (less than instead of less "
        "than or equal to). An end date of Feb 1, 2025 returns entries until Jan 31, 2025.",
    )
    use_telecom: bool = Field(
        default=False,
        description="Use Telecom flag: look a patient up by several kinds of contact (phone "
        "numbers, email addresses, URLs...) instead of just the phone number.",
    )
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
    category_filter_array: list[Code] = Field(
        default_factory=list,
        max_length=100,
        description="Category filter array: the codes used for filtering the category response "
        "in the FHIR ServiceRequest API, e.g. 409063004 (at most 100 codes of 64 characters).",
    )
    system_for_send_interactive_records: SystemUri | None = Field(
        default=None,
        description="System for send interactive records: the coding system (a URL such as "
        "https://fhir.cerner.com/..., or a URN) of the document sent to the EHR.",
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
