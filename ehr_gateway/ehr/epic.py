"""Epic: header settings, FHIR settings, Epic settings and Epic OAuth settings."""

from __future__ import annotations

from enum import Enum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from ehr_gateway.ehr.fields import (
    SECRET,
    SHORT_TEXT_MAX,
    TRUST,
    URL_MAX,
    Credential,
    Days,
    FetchedUrl,
    HeaderText,
    HttpsUrl,
    IdentifierSystem,
    Mapping,
    SettingsModel,
    ShortText,
    WebUrl,
)
from ehr_gateway.ehr.secret import StoredSecret, may_lack_secret
from ehr_gateway.ehr.shared import (
    IDENTIFIER_SYSTEM_FORMS,
    CategoryFilterArray,
    DayRangeForTemporalSearches,
    LegalSexSearch,
    MrnIdentifier,
    SelfServiceIdentifier,
    SendDataAfterMissedCall,
    SendRecordingUrl,
    SsnIdentifier,
    UrlPrefix,
    UseBatch,
    UseGtInDateRange,
    UseLtInDateRange,
    UseTelecom,
)

_CAP = f" At most {SHORT_TEXT_MAX} characters."


def _check_audience(value: str, info: ValidationInfo) -> str:
    """Refuse an http(s) URL without a host (https://, https:///cti): it names no one's service,
    and is a typo or a paste cut short; with the host, the gateway's endpoints can be under it."""
    if (info.context or {}).get("stored"):
        return value  # saved before the rule: still read, so it can be replaced
    if not value.lower().startswith(("http:", "https:")):
        return value  # a name (epic-gateway) or another URI scheme: StringOrURI allows it
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise PydanticCustomError(
            "invalid_url", "an http(s) audience must be an absolute URL with a host"
        )
    return value


# A JWT audience: usually a URL, but any string (RFC 7519 StringOrURI); a URL has a host.
Audience = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX),
    AfterValidator(_check_audience),
]


class EpicHeaderSettings(SettingsModel):
    """The headers sent with every request to Epic's API. All three are mandatory for Epic."""

    epic_client_id: HeaderText | None = Field(
        default=None, description="Epic Client ID, sent as a header of every API request." + _CAP
    )
    epic_user_id: HeaderText | None = Field(
        default=None, description="Epic User ID, sent as a header of every API request." + _CAP
    )
    epic_user_id_type: HeaderText | None = Field(
        default=None,
        description="Epic User ID Type, sent as a header of every API request (usually "
        '"External").' + _CAP,
    )


class EpicFhirSettings(SettingsModel):
    """Parameters of the FHIR APIs the product uses with Epic."""

    url_prefix: UrlPrefix = None
    ssn_identifier: SsnIdentifier = None
    mrn_identifier: MrnIdentifier = None
    practitioner_external_urn: IdentifierSystem | None = Field(
        default=None,
        description="Practitioner external urn: identifier for the healthcare provider (e.g. "
        "doctor, nurse, therapist)."
        + IDENTIFIER_SYSTEM_FORMS
        + " The deployment-wide default applies while it is not set.",
    )
    location_external_urn: IdentifierSystem | None = Field(
        default=None,
        description="Location external urn: identifier for the healthcare facility (e.g. "
        "hospital, clinic, pharmacy)."
        + IDENTIFIER_SYSTEM_FORMS
        + " The deployment-wide default applies while it is not set.",
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
        description="Use patient id as identifier: use external identifiers, such as the MRN or "
        "SSN, in appointment search and encounter search.",
    )
    category_filter_array: CategoryFilterArray = []
    direct_reschedule_use_case: bool = Field(
        default=False,
        description="Direct Reschedule use case: when off, rescheduling uses FHIR (get future "
        "appointments); when on, it uses Epic's reschedule API, which updates the date and time "
        "directly.",
    )


class ReceiveCommunicationVersion(Enum):
    """Which version of Epic's ReceiveCommunication API the screen pop uses."""

    V1 = "V1"
    V3 = "V3"


# The fields the slot search rule reads; an error goes on the first unless only the other was sent.
_SLOT_SEARCH_RULE = ("epicMaximumSlotSearchDateRangeInDays", "maxAllowedSlotSearchDateRangeDays")


class EpicSettings(SettingsModel):
    """Parameters specific to Epic."""

    vip_flag_type: ShortText | None = Field(
        default=None,
        description="The vip_flag_type schema: the confidentiality classification pulled from "
        "Epic (e.g. VIP, EMP, CONF), aligned with the patient's system-level privacy flag for "
        "access control and auditing." + _CAP,
    )
    context: ShortText | None = Field(
        default=None,
        description="The context schema: context to open at the screen pop up, e.g. Scheduling. "
        "Mandatory." + _CAP,
    )
    # Fetched by discoverJku and refreshJku, and the outbound client calls https only: a plain
    # http one is refused here rather than at every discovery. The issuer below is only compared
    # with each token's iss, never fetched (the default pattern's discovery checks its own URL).
    jku_server_url: Annotated[FetchedUrl | None, TRUST] = Field(
        default=None,
        description="JKU Server URL: the JWK Set URL used to validate the JWTs in requests from "
        "Epic (pause and resume, click to call). https only (plain http is INSECURE_URL: the key "
        "set could never be fetched), unless the deployment allows insecure HTTP. If you do not "
        "know it yet, enter any https URL (the external gateway's base path URL, for example): "
        "the JKU named by the JWTs of Epic's requests to the base path URL is then shown as "
        "observedJku, and adoptObservedJku makes it this setting. Mandatory.",
    )
    enable_default_jku_server_url_pattern: Annotated[bool, TRUST] = Field(
        default=False,
        description="Enable Default JKU Server URL Pattern: the key set is served at a "
        "conventional URL based on the issuer (saves manual configuration).",
    )
    jwt_issuer_url: Annotated[WebUrl | None, TRUST] = Field(
        default=None,
        description="JWT Issuer URL: the base URL of your identity provider or authorization "
        "server, for the JWTs of pause and resume and click to call. The spec calls it optional, "
        "but verifyEpicJwt checks every token's issuer against it, so readiness reports it "
        "missing while it is not set.",
    )
    jwt_audience: Annotated[Audience | None, TRUST] = Field(
        default=None,
        description="JWT Audience: the `aud` Epic puts in the JWTs of pause and resume and click "
        "to call (the URL Epic calls, as configured in Epic). verifyEpicJwt accepts a token whose "
        "`aud` is this value, or a URL under it when it is an http(s) URL with a path (under "
        "https://gateway.example/epic/cti: https://gateway.example/epic/cti/pause, not "
        "https://gateway.example/epic/ctiX; an origin or a name is matched exactly). An http(s) "
        "URL without a host is refused (INVALID_URL). While it is not set, the external "
        "gateway's base path URL (or a URL under it) is expected.",
    )
    epic_user_id: ShortText | None = Field(
        default=None,
        description="The epic_user_id schema: the user name of the user created on Epic for the "
        "contact center." + _CAP,
    )
    epic_user_id_type: ShortText = Field(
        default="External",
        description='The epic_user_id_type schema: always "External" (the default).' + _CAP,
    )
    provider_id_type: ShortText | None = Field(
        default=None,
        description="The provider_id_type schema: the type of the ID whose URN is set in the "
        "FHIR settings (practitioner external urn)." + _CAP,
    )
    location_id_type: ShortText | None = Field(
        default=None,
        description="The location_id_type schema: the type of the location ID." + _CAP,
    )
    visit_id_type: ShortText | None = Field(
        default=None, description="The visit_id_type schema: the type of the visit ID." + _CAP
    )
    # Half of one credential: the stored password is sent with whatever username is saved, so
    # whoever may not set the password may not change the name it is sent with either.
    soap_username: Annotated[Credential | None, SECRET] = Field(
        default=None,
        description="SOAP Username: the username created for SOAP communication with Epic. Only "
        "necessary for Prescription Refill use cases; set together with the SOAP password: a "
        "save that sends either and leaves one set without the other is refused "
        "(SOAP_CREDENTIALS_INCOMPLETE). "
        "The stored password is sent with it, so it is guarded as the password is. An "
        "import (exports carry no secret) may store the username alone; readiness then names "
        "the password still needed." + _CAP,
    )
    soap_password: Annotated[StoredSecret, SECRET] = Field(
        default_factory=StoredSecret,
        description="SOAP Password: the password of the SOAP username. Only necessary for "
        "Prescription Refill use cases. Write-only: it is stored encrypted and never returned.",
    )
    use_oauth: Annotated[bool, TRUST] = Field(
        default=False,
        description="Use Oauth Flag: use OAuth-based authentication provided by Epic instead of "
        "other third-party or custom authentication mechanisms.",
    )
    oauth_base_path: Annotated[ShortText | None, TRUST] = Field(
        default=None,
        description="OAuth Base Path for the APIs. Applies only when Use Oauth Flag is on." + _CAP,
    )
    receive_communication_version: ReceiveCommunicationVersion | None = Field(
        default=None,
        description="Flag to which version we should use for ReceiveCommunication: V1 or V3, "
        "for the screen pop capability.",
    )
    phone_system_id: ShortText | None = Field(
        default=None,
        description="Phone System ID: Epic phone system ID for the screen pop capability." + _CAP,
    )
    phone_system_type: ShortText | None = Field(
        default=None,
        description="Phone System Type: Epic phone system type for the screen pop capability."
        + _CAP,
    )
    fallback_entry_department_id_for_service_record: ShortText | None = Field(
        default=None,
        description="The fallback_entry_department_id_for_service_record schema: changes the "
        "default used when sending data to the EHR." + _CAP,
    )
    fallback_entry_department_type_for_service_record: ShortText | None = Field(
        default=None,
        description="The fallback_entry_department_type_for_service_record schema: changes the "
        "default used when sending data to the EHR." + _CAP,
    )
    fallback_agent_user_id_for_service_record: ShortText | None = Field(
        default=None,
        description="The fallback_agent_user_id_for_service_record schema: changes the default "
        "used when sending data to the EHR." + _CAP,
    )
    fallback_agent_user_type_for_service_record: ShortText | None = Field(
        default=None,
        description="The fallback_agent_user_type_for_service_record schema: changes the default "
        "used when sending data to the EHR." + _CAP,
    )
    source_type_for_service_record: ShortText | None = Field(
        default=None,
        description="The source_type_for_service_record schema: changes the default used when "
        "sending data to the EHR." + _CAP,
    )
    source_name_for_service_record: ShortText | None = Field(
        default=None,
        description="The source_name_for_service_record schema: changes the default used when "
        "sending data to the EHR." + _CAP,
    )
    source_entity_id_for_service_record: ShortText | None = Field(
        default=None,
        description="The source_entity_id_for_service_record schema: changes the default used "
        "when sending data to the EHR." + _CAP,
    )
    source_entity_type_for_service_record: ShortText | None = Field(
        default=None,
        description="The source_entity_type_for_service_record schema: changes the default used "
        "when sending data to the EHR." + _CAP,
    )
    fallback_patient_id_type_for_service_record: ShortText | None = Field(
        default=None,
        description="The fallback_patient_id_type_for_service_record schema: changes the default "
        "used when sending data to the EHR." + _CAP,
    )
    epic_maximum_slot_search_date_range_in_days: Days = Field(
        default=30,
        description="Epic Maximum Slot Search Date Range In Days: the maximum number of days in "
        "a single slot search. Default 30; may not exceed the total maximum.",
    )
    max_allowed_slot_search_date_range_days: Days = Field(
        default=90,
        description="Max Allowed Slot Search Date Range Days: the number of days you may search "
        "in total, across all your searches (one search of 90 days, or several up to 90). "
        "Default 90.",
    )
    quick_crm_topic_mapping: Mapping = Field(
        default_factory=list,
        description="Quick CRM Topic Mapping: intents (the topic of the call, from Navigator or "
        "Autopilot exits) as names, mapped to the intent IDs defined in Epic as values. The "
        "intent is shown in the Epic screen pop when it has an intent ID. Names are unique.",
    )
    send_recording_url: SendRecordingUrl = False
    send_data_after_missed_call: SendDataAfterMissedCall = False

    @model_validator(mode="after")
    def _check_rules(self) -> EpicSettings:
        if self.epic_maximum_slot_search_date_range_in_days > (
            self.max_allowed_slot_search_date_range_days
        ):
            raise PydanticCustomError(
                "slot_search_range_exceeds_total",
                "epicMaximumSlotSearchDateRangeInDays may not exceed "
                "maxAllowedSlotSearchDateRangeDays",
                {"field": _SLOT_SEARCH_RULE[0], "fields": _SLOT_SEARCH_RULE},
            )
        return self

    @model_validator(mode="after")
    def _check_soap_pair(self, info: ValidationInfo) -> EpicSettings:
        if (self.soap_username is None) == (not self.soap_password.is_set):
            return self
        if may_lack_secret(info.context, {"soapUsername", "soapPassword"}):
            return self  # readiness names the half still needed
        raise PydanticCustomError(
            "soap_credentials_incomplete",
            "soapUsername and soapPassword are set together or not at all",
            {
                "field": "soapPassword" if self.soap_username else "soapUsername",
                "fields": ("soapUsername", "soapPassword"),
            },
        )


class EpicOAuthSettings(SettingsModel):
    """Epic OAuth settings: the client registered with Epic and its token endpoint."""

    epic_client_id: ShortText | None = Field(
        default=None, description="The Epic Client ID of the OAuth client." + _CAP
    )
    oauth_token_url: Annotated[HttpsUrl | None, TRUST] = Field(
        default=None, description="The OAuth Token URL of Epic's authorization server (https)."
    )
