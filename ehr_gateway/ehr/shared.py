"""Settings several EHRs share, defined once: the type, the rules and the spec's description.
A model uses one as ``use_batch: UseBatch = False``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ehr_gateway.ehr.fields import (
    SHORT_TEXT_MAX,
    TOKEN_MAX,
    URL_MAX,
    Days,
    IdentifierSystem,
    TokenCode,
    UrlPath,
)

_CAP = f" At most {SHORT_TEXT_MAX} characters."
_DEPLOYMENT_DEFAULT = " The deployment-wide default applies while it is not set."
IDENTIFIER_SYSTEM_FORMS = (
    " An absolute URI, as FHIR's Identifier.system: a URN (urn:oid:1.2.3, urn:uuid: with a "
    "lowercase UUID, other urn:<nid>:<nss>) or an http(s) URL such as "
    f"http://hl7.org/fhir/sid/us-ssn or https://fhir.cerner.com/<id>/codeSet/4. It names a "
    f"namespace and is never fetched. At most {URL_MAX} characters."
)

UrlPrefix = Annotated[
    UrlPath | None,
    Field(
        description="The url_prefix schema: an optional prefix between the base URL and the FHIR "
        "object, e.g. /FHIR/R4. A path only: each segment starts with / and is made of letters, "
        "digits and . _ ~ - (no . or .. segment, no @ : ? # \\ %); anything else is "
        "INVALID_URL_PREFIX." + _CAP
    ),
]
SsnIdentifier = Annotated[
    IdentifierSystem | None,
    Field(
        description="The ssn identifier: Social Security Number (SSN) identifier."
        + IDENTIFIER_SYSTEM_FORMS
        + " A deployment-wide default (the US SSN OID urn:oid:2.16.840.1.113883.4.1 unless "
        "configured otherwise) applies while it is not set. Mandatory."
    ),
]
MrnIdentifier = Annotated[
    IdentifierSystem | None,
    Field(
        description="The mrn identifier: Medical Record Number (MRN) identifier."
        + IDENTIFIER_SYSTEM_FORMS
        + _DEPLOYMENT_DEFAULT
        + " Mandatory."
    ),
]
SelfServiceIdentifier = Annotated[
    IdentifierSystem | None,
    Field(
        description="Self service identifier: used as a Patient flag to determine if the EHR "
        "self-service is active." + IDENTIFIER_SYSTEM_FORMS + _DEPLOYMENT_DEFAULT
    ),
]
LegalSexSearch = Annotated[
    bool,
    Field(
        description="Legal Sex Search: use gender as a parameter in searches and data handling, "
        "rather than relying solely on legal sex."
    ),
]
UseBatch = Annotated[
    bool,
    Field(
        description="Use Batch flag: group several individual requests into a single bundle "
        "request; the server processes each entry separately, but the client makes one call."
    ),
]
DayRangeForTemporalSearches = Annotated[
    Days | None,
    Field(
        description="Day range to be used for temporal searches: the number of days in the "
        "future or past for which appointments, encounters and other events are searched. Empty "
        "means no limit."
    ),
]
UseGtInDateRange = Annotated[
    bool,
    Field(
        description="Use 'gt' in date range: exclude the start date (greater than instead of "
        "greater than or equal to). A start date of Jan 1, 2025 returns entries from Jan 2, 2025."
    ),
]
UseLtInDateRange = Annotated[
    bool,
    Field(
        description="Use 'lt' in date range: exclude the end date (less than instead of less "
        "than or equal to). An end date of Feb 1, 2025 returns entries until Jan 31, 2025."
    ),
]
UseTelecom = Annotated[
    bool,
    Field(
        description="Use Telecom flag: look a patient up by several kinds of contact (phone "
        "numbers, email addresses, URLs...) instead of just the phone number."
    ),
]
CategoryFilterArray = Annotated[
    list[TokenCode],
    Field(
        max_length=100,
        description="Category filter array: the codes used for filtering the category response "
        "in the FHIR ServiceRequest API. Each entry is one FHIR token search value: code "
        "(409063004, Lab Order), system|code (http://snomed.info/sct|409063004) or |code (a "
        "code without a system). The system is an absolute URI; the code is a FHIR code (no "
        "leading, trailing or double spaces); \\, |, , and $ inside a system or code are "
        "escaped with a backslash, as in a FHIR search. At most 100 entries of "
        f"{TOKEN_MAX} characters.",
    ),
]
SendRecordingUrl = Annotated[
    bool,
    Field(
        description="Send data to EHR: Recording URL: voice interactions are recorded and a URL "
        "for the recording is sent to the EHR."
    ),
]
SendDataAfterMissedCall = Annotated[
    bool,
    Field(
        description="Send data to EHR after a missed call: record missed calls from patients "
        "in their information."
    ),
]
