"""Ellkay: Ellkay settings (Ellkay has no FHIR settings)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ehr_gateway.ehr.fields import (
    LONG_TEXT_MAX,
    SECRET,
    SHORT_TEXT_MAX,
    CommentTemplate,
    Days,
    SettingsModel,
    ShortText,
    UtcOffset,
)
from ehr_gateway.ehr.secret import ISSUED_KEY, StoredSecret
from ehr_gateway.ehr.shared import (
    SendDataAfterMissedCall,
    SendRecordingUrl,
)

_CAP = f" At most {SHORT_TEXT_MAX} characters."


class EllkaySettings(SettingsModel):
    """Parameters specific to Ellkay."""

    # Both keys authenticate the contact center to ELLKAY's API: credentials, so write-only
    # secrets like Epic's SOAP password, not settings anyone who may read the page can copy.
    # Keys as ELLKAY issues them: one pasted with a space around it is refused, not kept as
    # another key.
    subscriber_key: Annotated[StoredSecret, SECRET, ISSUED_KEY] = Field(
        default_factory=StoredSecret,
        description="The subscriber_key schema: provided by ELLKAY upon request. Mandatory. "
        "Write-only: it is stored encrypted and never returned. A key that starts or ends with "
        "white space or an invisible character (a zero-width space, a byte order mark) is "
        "refused (SURROUNDING_WHITESPACE).",
    )
    site_service_key: Annotated[StoredSecret, SECRET, ISSUED_KEY] = Field(
        default_factory=StoredSecret,
        description="The site_service_key schema: the SiteServiceKey, provided by ELLKAY or the "
        "customer. Mandatory. Write-only: it is stored encrypted and never returned. A key that "
        "starts or ends with white space or an invisible character (a zero-width space, a byte "
        "order mark) is refused (SURROUNDING_WHITESPACE).",
    )
    appointment_encounter_search_max_days: Days = Field(
        default=7,
        description="Maximum days that are allowed to be used in the Appointment and Encounter "
        "search: the maximum number of days in a single search for past appointments or "
        "encounters. Default 7.",
    )
    appointment_confirmation_comment: CommentTemplate | None = Field(
        default=None,
        description="Appointment confirmation comment: custom text added to the appointment's "
        'comment section, e.g. "Confirmed by the contact center on {{DATETIME}}". {{DATETIME}} '
        f"is the only placeholder recognised. At most {LONG_TEXT_MAX} characters.",
    )
    slot_search_max_days: Days | None = Field(
        default=None,
        description="Maximum days that are allowed to be used in the Slot search: the maximum "
        "number of days in a single slot search. Empty means no limit.",
    )
    name_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Name for send interactive records: the name given to the record of a "
        "patient's interaction with the contact center, e.g. Conversation details." + _CAP,
    )
    document_type_id_for_send_interactive_records: ShortText | None = Field(
        default=None,
        description="Document_type_id for send interactive records: the document type of that "
        "record." + _CAP,
    )
    waitlisting_status_name: ShortText = Field(
        default="Waitlist",
        description='The specific status name for appointment waitlisting. Default "Waitlist".'
        + _CAP,
    )
    rescheduling_status_name: ShortText = Field(
        default="Rescheduled",
        description="The specific status name for appointment rescheduling. Default "
        '"Rescheduled".' + _CAP,
    )
    account_time_zone_offset: UtcOffset = Field(
        default="+00:00",
        description="The account time zone offset, ±HH:MM, so that scheduled jobs and "
        "timestamps align with the account's time zone. Default +00:00 (UTC).",
    )
    send_recording_url: SendRecordingUrl = False
    send_data_after_missed_call: SendDataAfterMissedCall = False
