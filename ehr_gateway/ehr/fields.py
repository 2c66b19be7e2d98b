"""Value types shared by the settings models: each one is a rule of the spec or of our notes.

Every custom rule raises a ``PydanticCustomError`` whose type is a stable error code (the API
reports it upper-cased) and whose message never repeats the submitted value: settings may hold
secrets, and error messages end up in logs and browser consoles.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import idna
import isodate
import rfc3986
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from rfc3986 import validators

SHORT_TEXT_MAX = 256
LONG_TEXT_MAX = 2000
URL_MAX = 2048
MAPPING_MAX_ENTRIES = 500
DAYS_MAX = 36_500  # a century: any larger day count is a typo, not a policy


class SettingsModel(BaseModel):
    """Base of every settings model: camelCase names (as in GraphQL and in the stored documents),
    unknown keys rejected, assignment validated."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_enum_values=False,
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Say so in the setting's description (and so in the schema and the console's forms),
        # from the one declaration.
        for name, field in cls.model_fields.items():
            permission = guarded_by(field)
            # A write-only secret that forgot its marker would be writable with its block's
            # permission alone: refuse to define such a model at all.
            if getattr(field.annotation, "is_write_only_secret", False) and permission is None:
                raise TypeError(f"{cls.__name__}.{name} is a secret: declare it with SECRET")
            note = f" Changing it needs the {permission} permission."
            if permission and field.description and not field.description.endswith(note):
                field.description += note


@dataclass(frozen=True, slots=True)
class Guarded:
    """Marks a setting (``Annotated[T, TRUST]``) whose value only callers holding ``permission``
    may change, whichever write carries it: holding the permission to save its block is not
    enough. The name is the permission's name in the API; ``ehr`` imports nothing of ours."""

    permission: str


# Settings that decide whom the gateway trusts (key sets, issuers) or calls (token endpoints,
# EHR base URLs): an account admin who could change them could make the gateway accept tokens
# he signs, or send its credentials to a server of his.
TRUST = Guarded("integration:edit")
# Write-only secrets.
SECRET = Guarded("secrets:write")


def guarded_by(field: FieldInfo) -> str | None:
    """The permission changing ``field`` needs beyond its block's, if any."""
    for marker in field.metadata:
        if isinstance(marker, Guarded):
            return marker.permission
    return None


def _caps(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


# Control characters (C0, DEL, C1: Unicode's Cc) and the line and paragraph separators.
_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same, but for the tab and the line breaks a note is written with.
_BREAKING_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def _check_one_line(value: str, info: ValidationInfo) -> str:
    """A name, id or code: one line, as every system it is sent to and every form and log it
    is shown in reads it (a NUL ends it in C, a line break starts a header or a log entry)."""
    if not _stored(info) and _BREAKING.search(value):
        raise PydanticCustomError(
            "control_character",
            "must be one line of text: no control characters such as NUL, tab or line breaks",
        )
    return value


def _check_lines(value: str, info: ValidationInfo) -> str:
    """A note (a description, a comment): tabs and line breaks (LF, CR) are its own, other
    control characters (NUL, escape, DEL) and U+2028/U+2029 no one types."""
    if not _stored(info) and _BREAKING_IN_LINES.search(value):
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters such as NUL or escape (tabs and line breaks "
            "are allowed)",
        )
    return value


# Free text. Empty strings are refused (min_length=1): clearing a value is done with null.
# Text stored under earlier rules (control characters were taken) still reads back.
ShortText = Annotated[str, _caps(SHORT_TEXT_MAX), AfterValidator(_check_one_line)]
LongText = Annotated[str, _caps(LONG_TEXT_MAX), AfterValidator(_check_lines)]

_URN = re.compile(
    # RFC 8141: urn:<NID>:<NSS>; NID is 2-32 letters, digits or hyphens, not starting with one.
    r"(?i:urn):(?P<nid>[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]):(?P<nss>[A-Za-z0-9()+,\-.:=@;$_!*'%/?#~&]+)",
)
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
# FHIR's uuid type: RFC 4122 text, lowercase ("for UUIDs use all lowercase").
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# RFC 3986 characters (unreserved, reserved) and well-formed percent-encodings: a URI is ASCII,
# and rfc3986's validator does not look inside the path or the query.
_URI_TEXT = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_NAME_URL = (
    validators.Validator()
    .require_presence_of("scheme", "host")
    .allow_schemes("http", "https")
    .forbid_use_of_password()
    .check_validity_of("scheme", "userinfo", "host", "port", "path", "query", "fragment")
)
ABSOLUTE_URI = (
    "must be an absolute URI: a URN such as urn:oid:2.16.840.1.113883.4.1 or a URL such as "
    "http://hl7.org/fhir/sid/us-ssn"
)


# The namespaces whose prefix FHIR spells in lower case in its own types (oid, uuid), which is
# how EHRs send them.
_LOWER_CASE_NIDS = ("oid", "uuid")


def _urn_problem(value: str, *, prefix_case: bool = True) -> str | None:
    """Why ``value`` is not a well-formed URN, or None. With ``prefix_case``, a prefix not in
    lower case is a problem too: RFC 8141 reads ``URN:OID:`` as ``urn:oid:``, but FHIR compares
    an Identifier.system or a Coding.system as an exact string, and EHRs send ``urn:oid:``, so
    a system saved as typed in capitals never matches a patient's identifier."""
    match = _URN.fullmatch(value)
    if match is None:
        return ABSOLUTE_URI
    nid = match["nid"].lower()
    if prefix_case and nid in _LOWER_CASE_NIDS and not value.startswith(f"urn:{nid}:"):
        return (
            f"write the urn:{nid}: prefix in lower case: FHIR compares systems as exact "
            f"strings, and EHRs send urn:{nid}:"
        )
    if prefix_case and not value.startswith("urn:"):
        return "write the urn: prefix in lower case: FHIR compares systems as exact strings"
    if nid == "oid" and not _OID.fullmatch(match["nss"]):
        return "an urn:oid: identifier must be dotted digits, e.g. urn:oid:1.2.3"
    if nid == "uuid" and not _UUID.fullmatch(match["nss"]):
        return "an urn:uuid: identifier must be a lowercase UUID, e.g. urn:uuid:53fefa32-fcbb-…"
    return None


def _name_url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute http(s) URL used as a name, or None.

    A system URL is a namespace, never fetched, so the SSRF and ambiguous-host rules of the URLs
    the gateway calls do not apply: ``http://hl7.org/fhir/sid/us-ssn`` is plain http by
    definition. Only http(s) is taken: FHIR's systems are URLs or URNs, and ftp: or mailto: as a
    system is a typo."""
    if not _URI_TEXT.fullmatch(value):
        return "must be an ASCII URI without spaces, control characters or bad %-escapes"
    try:
        _NAME_URL.validate(rfc3986.uri_reference(value))
    except rfc3986.exceptions.ValidationError:
        return ABSOLUTE_URI
    return None


def absolute_uri_problem(value: str, *, prefix_case: bool = True) -> str | None:
    """Why ``value`` is not an absolute URI as FHIR's ``Identifier.system`` and ``Coding.system``
    take them (a URN or an http(s) URL), or None. ``prefix_case=False`` lets a URN prefix not in
    lower case pass (a stored value, saved before that was refused)."""
    if value[:4].lower() == "urn:":
        return _urn_problem(value, prefix_case=prefix_case)
    return _name_url_problem(value)


def _stored(info: ValidationInfo) -> bool:
    # A stored value passed the rules of the day it was written (urn:uuid: took any text, a
    # coding system any printable URL): a stricter rule must not make a tenant's settings
    # unreadable.
    return bool((info.context or {}).get("stored"))


def _check_identifier_system(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value
    problem = absolute_uri_problem(value)
    if problem is not None:
        # INVALID_URN is the code clients match on since identifiers were URNs only.
        raise PydanticCustomError("invalid_urn", problem)
    return value


IdentifierSystem = Annotated[str, _caps(URL_MAX), AfterValidator(_check_identifier_system)]
"""A FHIR ``Identifier.system``: an absolute URI, a URN (``urn:oid:2.16.840.1.113883.4.1``,
``urn:uuid:…``, other ``urn:<nid>:<nss>``) or an http(s) URL (``http://hl7.org/fhir/sid/us-ssn``)."""


# WHATWG URL parsers (browsers, curl's and Go's in part) read a host whose last label is a number
# as an IPv4 address in any of its legacy forms (octal, hex, fewer than four parts); others
# (urllib, httpx) read it as a name or refuse it, and the resolver then reads it its own way.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_NAME_LABEL = re.compile(r"[a-z0-9_-]+")  # letters, digits, hyphens (and underscores, seen in DNS)
_LABEL_MAX = 63
_HOST_MAX = 253
# What IDNA (and WHATWG URL parsers) read as a label separator besides ".": the ideographic,
# fullwidth and halfwidth ideographic full stops.
_IDNA_FULL_STOPS = "\u3002\uff0e\uff61"
# IDNA's deviation characters: IDNA 2008 (this check, httpx) keeps them in the name, IDNA 2003
# and UTS #46 transitional processing (Python's "idna" codec, which urllib, http.client and
# socket.getaddrinfo use; Java's java.net.IDN) map them away: fhir.straße.example is
# xn--strae-oqa.example to one and fhir.strasse.example, another domain, to the other. Sharp s,
# final sigma, ZWJ and ZWNJ are all the characters the two map differently (UTS #46, 4.1.1).
# (ZWJ and ZWNJ, not printable, are refused with the URL before the host is read: listed so that
# this rule holds by itself.)
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200d\u200c")
_AMBIGUOUS = "the host must be a plain name or a canonical IP address that every parser reads alike"


def _ambiguous_host() -> PydanticCustomError:
    return PydanticCustomError("ambiguous_host", _AMBIGUOUS)


def _check_host(value: str, netloc: str, host: str) -> None:
    """Refuse hosts that URL parsers, resolvers and the outbound client could read as different
    machines: a URL is validated by one parser and called by another."""
    if "%" in host or "\\" in host:  # percent-decoded by some parsers; an IPv6 zone id
        raise _ambiguous_host()
    # The host as it goes on the wire (IDNA's A-labels for an internationalised name).
    wire = host
    if netloc.rpartition("@")[2].startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _ambiguous_host() from None
    else:
        name = host[:-1] if host.endswith(".") else host
        labels = name.split(".")
        if not all(labels) or len(name) > _HOST_MAX or any(len(x) > _LABEL_MAX for x in labels):
            raise _ambiguous_host()
        if _NUMERIC_LABEL.fullmatch(labels[-1]):
            try:
                canonical = str(ipaddress.IPv4Address(host)) == host
            except ValueError:
                canonical = False
            if not canonical:
                raise _ambiguous_host()
        elif not host.isascii() or any(label.startswith("xn--") for label in labels):
            if any(stop in name for stop in _IDNA_FULL_STOPS):
                raise _ambiguous_host()  # labels the split above did not see
            if not _IDNA_DEVIATIONS.isdisjoint(name.lower()):
                raise _ambiguous_host()  # one name to IDNA 2008, another to IDNA 2003
            try:
                encoded = idna.encode(name).decode("ascii")
                idna.decode(encoded)
            except (idna.IDNAError, UnicodeError):
                raise _ambiguous_host() from None
            wire = encoded + host[len(name) :]
        elif not all(_NAME_LABEL.fullmatch(label) for label in labels):
            raise _ambiguous_host()  # quotes, braces, pipes: each client escapes them its own way
    # The client that makes the call must read the same host as the check above did. Compared
    # as sent: httpx's ``host`` shows U-labels only when the first label is one, so a name
    # written in Unicode (fhir.universitätsklinikum.de) or in A-labels (xn--hpital-...) would
    # otherwise differ from the same name in the other form.
    try:
        called = httpx.URL(value).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        raise _ambiguous_host() from None
    if called.lower() != wire.lower():
        raise _ambiguous_host()


def _check_url(value: str, info: ValidationInfo, *, https_only: bool) -> str:
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise PydanticCustomError("invalid_url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise PydanticCustomError("invalid_url", "has an invalid port or host") from None
    allowed = {"https"}
    context = info.context or {}
    # A stored value passed the rules of its day (a JKU took plain http before it was refused):
    # it is read whatever its scheme, and the outbound client still refuses to call it.
    if not https_only or context.get("allow_insecure_http") or context.get("stored"):
        allowed.add("http")
    if parts.scheme not in allowed or not parts.hostname:
        if allowed == {"https"}:
            raise PydanticCustomError("invalid_url", "must be an absolute https:// URL")
        raise PydanticCustomError("invalid_url", "must be an absolute http(s):// URL")
    if parts.username or parts.password:
        raise PydanticCustomError("invalid_url", "must not carry credentials")
    if context.get("stored"):
        return value
    if "@" in parts.netloc:  # an empty user part: parsers disagree on where the host starts
        raise _ambiguous_host()
    _check_host(value, parts.netloc, parts.hostname)
    return value


def _https_url(value: str, info: ValidationInfo) -> str:
    return _check_url(value, info, https_only=True)


def _web_url(value: str, info: ValidationInfo) -> str:
    return _check_url(value, info, https_only=False)


HttpsUrl = Annotated[str, _caps(URL_MAX), AfterValidator(_https_url)]
"""An absolute https URL (plain http only when the server allows insecure HTTP for testing)."""


def _refuse_plain_http(value: str, info: ValidationInfo) -> str:
    """Refuse a plain http URL with the outbound client's own code and words: the field is
    fetched, and the client calls https only (plain http too where the deployment allows it,
    EHRGW_ALLOW_INSECURE_HTTP), so the engineer reads at the field what fetching it would say."""
    context = info.context or {}
    if context.get("allow_insecure_http") or context.get("stored"):
        return value
    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        return value  # not a URL at all: _https_url says why
    if scheme == "http":
        name = to_camel(info.field_name) if info.field_name else "this URL"
        raise PydanticCustomError(
            "insecure_url",
            f"{name} must be an https:// URL: only https:// URLs are called, so a plain http:// "
            "one could never be fetched",
        )
    return value


# Validated by _https_url after the scheme: a form still reads it as a URL (console_forms keys
# URL inputs on that validator).
FetchedUrl = Annotated[
    str, _caps(URL_MAX), AfterValidator(_refuse_plain_http), AfterValidator(_https_url)
]
"""An absolute https URL the gateway fetches (a key set): plain http is INSECURE_URL, as the
outbound client refuses it, unless the deployment allows insecure HTTP."""

WebUrl = Annotated[str, _caps(URL_MAX), AfterValidator(_web_url)]
"""An absolute http or https URL."""


def _check_uri(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value
    problem = absolute_uri_problem(value)
    if problem is not None:
        code = "invalid_urn" if value[:4].lower() == "urn:" else "invalid_url"
        raise PydanticCustomError(code, problem)
    return value


SystemUri = Annotated[str, _caps(URL_MAX), AfterValidator(_check_uri)]
"""A FHIR coding system: an absolute http(s) URL or a URN."""

_DURATION_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_DAY = Decimal(86_400)
_UNIT_SECONDS = {"years": _DAY * Decimal("365.25"), "months": _DAY * Decimal("365.25") / 12,
                 "weeks": _DAY * 7, "days": _DAY, "hours": Decimal(3600),
                 "minutes": Decimal(60), "seconds": Decimal(1)}  # fmt: skip
# A century (P100Y, 3,155,760,000 s), as DAYS_MAX: a longer cache TTL is a typo, and a runtime
# holds it in a timedelta (999,999,999 days at most) or in int64 seconds or milliseconds.
DURATION_MAX_SECONDS = 100 * _UNIT_SECONDS["years"]
DURATION_EXAMPLES = "PT20H, P2D or PT0.5H"
# A millisecond: the shortest duration every runtime holds as more than zero. isodate (and so a
# timedelta) keeps whole microseconds and drops the rest, a runtime holding whole milliseconds
# drops more: PT0.0000001S is positive as written and zero as read, so a cache it enables never
# keeps anything.
DURATION_MIN_SECONDS = Decimal("0.001")


def _invalid_duration(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_duration", message)


def _check_duration(value: str, info: ValidationInfo) -> str:
    """An ISO 8601 duration in designator form (PnYnMnWnDTnHnMnS), positive, where only the last
    (smallest) unit written may carry a decimal fraction, with a point or a comma (ISO 8601-1
    4.4.3.2). isodate reads it; it does not hold the fraction or sign rules itself."""
    match = isodate.isoduration.ISO8601_PERIOD_REGEX.fullmatch(value)
    written = [unit for unit in _DURATION_UNITS if match is not None and match[unit]]
    if (
        match is None
        or match["sign"]
        or not written
        or (
            match["separator"]
            and not match["hours"]
            and not match["minutes"]
            and not match["seconds"]
        )
    ):
        raise _invalid_duration(f"must be an ISO 8601 duration such as {DURATION_EXAMPLES}")
    if any(re.search("[.,]", match[unit]) for unit in written[:-1]):
        raise _invalid_duration("only the last unit of a duration may have a fraction, e.g. PT1.5H")
    if any(re.search(r"[.,]\d*[1-9]", match[unit] or "") for unit in ("years", "months")):
        # isodate reads P0.5Y, but a Duration of it cannot be added to a date or a time (half
        # a month has no length): every use of the TTL would fail.
        if _stored(info):
            return value
        raise _invalid_duration(
            "years and months must be whole numbers: a fraction of one has no fixed length; "
            "write the rest in weeks, days or hours, e.g. P1M15D or P6M rather than P0.5Y"
        )
    if not any(re.search("[1-9]", match[unit]) for unit in written):
        # Stored before zero was refused: still read, so the tenant's other settings are.
        if _stored(info):
            return value
        raise _invalid_duration("must be longer than zero")
    seconds = _duration_seconds(match)
    if seconds < DURATION_MIN_SECONDS:
        if _stored(info):
            return value  # saved before the floor: still read, so it can be replaced
        raise _invalid_duration(
            "must be at least a millisecond (PT0.001S): a shorter one reads as zero"
        )
    if seconds > DURATION_MAX_SECONDS:
        if _stored(info):
            return value  # saved before the cap: still read, so it can be replaced
        raise PydanticCustomError("duration_too_long", "must be at most a century (P100Y)")
    try:
        isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError, OverflowError):
        raise _invalid_duration("is too large") from None
    return value


def _amount(written: str) -> Decimal:
    """The number of a unit as matched ("1,5M"), exactly."""
    return Decimal(written[:-1].replace(",", "."))


def _duration_seconds(match: re.Match[str]) -> Decimal:
    """The length of a matched duration in seconds, calendar units at their average length;
    exact decimals, so a number no runtime type can hold is still compared, not overflowed."""
    return sum(
        (_amount(match[unit]) * _UNIT_SECONDS[unit] for unit in _DURATION_UNITS if match[unit]),
        Decimal(0),
    )


IsoDuration = Annotated[str, _caps(64), AfterValidator(_check_duration)]

_OFFSET = re.compile(r"[+-](0[0-9]|1[0-4]):[0-5][0-9]")


def _check_offset(value: str) -> str:
    if not _OFFSET.fullmatch(value) or value[1:] > "14:00":
        raise PydanticCustomError(
            "invalid_offset", "must be a UTC offset ±HH:MM between -14:00 and +14:00"
        )
    return value


UtcOffset = Annotated[str, _caps(6), AfterValidator(_check_offset)]


def _check_digits(value: str) -> str:
    if not value.isascii() or not value.isdigit():
        raise PydanticCustomError("not_digits", "must contain digits only")
    return value


DigitsId = Annotated[str, _caps(20), AfterValidator(_check_digits)]

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
TEMPLATE_PLACEHOLDERS = frozenset({"DATETIME"})


def _check_template(value: str) -> str:
    for name in _PLACEHOLDER.findall(value):
        if name.strip() not in TEMPLATE_PLACEHOLDERS:
            raise PydanticCustomError(
                "unknown_placeholder", "the only placeholder recognised is {{DATETIME}}"
            )
    if "{{" in _PLACEHOLDER.sub("", value) or "}}" in _PLACEHOLDER.sub("", value):
        raise PydanticCustomError("unknown_placeholder", "unbalanced {{ }} placeholder")
    return value


CommentTemplate = Annotated[
    str, _caps(LONG_TEXT_MAX), AfterValidator(_check_lines), AfterValidator(_check_template)
]

Days = Annotated[int, Field(ge=0, le=DAYS_MAX)]
"""A number of days: a non-negative whole number, at most 36,500."""

# FHIR's code type: no leading or trailing whitespace, single spaces inside.
_FHIR_CODE = re.compile(r"[^\s]+( [^\s]+)*")
# What a backslash escapes in a FHIR search value (https://hl7.org/fhir/search.html#escaping).
_ESCAPED = frozenset("\\|,$")
TOKEN_MAX = 512


def _invalid_code(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_code", message)


def _token_parts(value: str) -> list[str]:
    """``value`` cut at its unescaped ``|``, each part unescaped."""
    parts = [""]
    characters = iter(value)
    for character in characters:
        if character == "\\":
            escaped = next(characters, "")
            if escaped not in _ESCAPED:
                raise _invalid_code("a backslash escapes only \\ | , or $")
            parts[-1] += escaped
        elif character == "|":
            parts.append("")
        elif character in ",$":
            # Unescaped, FHIR search reads them as "or" and as a composite's separator: one
            # entry is one token, alternatives are entries of their own.
            raise _invalid_code("escape , and $ with a backslash: one code per entry")
        else:
            parts[-1] += character
    return parts


def _check_token(value: str, info: ValidationInfo) -> str:
    parts = _token_parts(value)
    if len(parts) > 2:
        raise _invalid_code("at most one unescaped |, between the system and the code")
    code = parts[-1]
    if len(parts) == 2 and not code:
        raise _invalid_code("system| names no code: write the code after the |")
    if not _FHIR_CODE.fullmatch(code) or has_control_character(code):
        raise _invalid_code(
            "must be a FHIR code (no leading, trailing or double spaces), as code, system|code "
            "or |code"
        )
    if len(parts) == 2 and parts[0]:
        # Stored before a URN prefix in capitals was refused: still read, so it can be fixed.
        problem = absolute_uri_problem(parts[0], prefix_case=not _stored(info))
        if problem is not None:
            raise _invalid_code("the system before | " + problem)
    return value


TokenCode = Annotated[str, _caps(TOKEN_MAX), AfterValidator(_check_token)]
"""A FHIR token search value: ``code``, ``system|code`` or ``|code`` (a code without a system),
with FHIR search escaping (``\\|``, ``\\,``, ``\\$``, ``\\\\``)."""


# Control characters, and the Unicode line and paragraph separators (U+2028, U+2029), which are
# not control characters to Unicode but line breaks to JavaScript, XML tooling and log viewers.
_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds a control character (NUL, line breaks, escape, DEL, C1) or a
    Unicode line or paragraph separator: in a credential each one ends or splits it in some
    protocol it is sent over (SOAP, HTTP, C) or some viewer it is shown in."""
    return any(unicodedata.category(ch) in _BREAKING_CATEGORIES for ch in value)


def _check_credential(value: str) -> str:
    if has_control_character(value):
        raise PydanticCustomError(
            "control_character", "must not contain control characters such as NUL or line breaks"
        )
    return value


Credential = Annotated[str, _caps(SHORT_TEXT_MAX), AfterValidator(_check_credential)]
"""A user name or key sent to another system: short text without control characters."""

# A path of RFC 3986 unreserved characters only: runtimes splice the prefix onto the base URL as
# text or join it by segments, so "@host", ".host", "//host", dot segments, a query, a fragment,
# a backslash or a percent-encoding would each move the call (and the EHR's token) elsewhere.
_URL_PATH = re.compile(r"/|(/[A-Za-z0-9._~-]+)+/?")


def _check_url_path(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value  # saved before the rule: still read, so it can be corrected
    if not _URL_PATH.fullmatch(value) or any(
        segment in (".", "..") for segment in value.split("/")
    ):
        raise PydanticCustomError(
            "invalid_url_prefix",
            "must be a path: segments of letters, digits and . _ ~ -, each after a /, no . or "
            ".. segment (no host, query, fragment, backslash or percent-encoding)",
        )
    return value


UrlPath = Annotated[str, _caps(SHORT_TEXT_MAX), AfterValidator(_check_url_path)]
"""A path put between a base URL and what follows it, e.g. /FHIR/R4: at most 256 characters."""

# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


# Headers the HTTP client, the connection or the EHR's front end own: hop-by-hop and framing
# headers (a second Content-Length or Transfer-Encoding smuggles a request past the front end;
# Content-Type, Content-Encoding and Content-Range say how the body the runtime sends is read),
# routing (Host picks the virtual host; Proxy reaches a CGI-style server as HTTP_PROXY, which
# HTTP clients there take for their outbound proxy: "httpoxy"), what proxies on the way read or
# add (Via, Max-Forwards, HTTP2-Settings, CDN-Loop, Early-Data) and expectations. An editor may
# change headers but not whom or how the gateway calls.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "content-type",
        "content-encoding",
        "connection",
        "te",
        "trailer",
        "upgrade",
        "keep-alive",
        "expect",
        "content-range",
        "proxy",
        "via",
        "max-forwards",
        "http2-settings",
        # CDN-Loop (RFC 8586): a CDN that finds its own name in it refuses the request as a
        # loop. Early-Data (RFC 8470): says the request came in TLS early data, which the EHR
        # may answer with 425 Too Early. Both are the CDN's or the TLS front end's to set.
        "cdn-loop",
        "early-data",
    }
)
# Headers that proxies and frameworks in front of an EHR read as the request's real target,
# method or client: the original URL (IIS URL Rewrite, several frameworks), the forwarded host,
# scheme and client (absolute URLs, access lists by client address) and method overrides (a GET
# becomes a DELETE). Each re-routes a call as surely as Host does.
_ROUTING_HEADERS = frozenset(
    {
        "forwarded",
        "x-forwarded",  # a non-standard spelling of Forwarded some frameworks read
        "x-original-url",
        "x-rewrite-url",
        "x-original-host",
        "x-host",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        # Rewrite targets and the original URL under other names (IIS and ASP.NET rewrites,
        # Azure App Service's front end), and the scheme some frameworks take from a header.
        "x-http-destinationurl",
        "x-override-url",
        "x-ms-original-url",
        "disguised-host",
        "x-https",
        # The same client address under CDN and load-balancer vendors' names (Cloudflare,
        # Fastly, Rackspace/Riverbed, Google Cloud).
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-proxyuser-ip",
        # Client-address libraries (npm's request-ip, PHP's get-the-client-IP snippets) read
        # these beside X-Forwarded-For: Forwarded-For (HTTP_FORWARDED_FOR), Squid's and older
        # proxies' X-Coming-From and Coming-From.
        "forwarded-for",
        "x-coming-from",
        "coming-from",
    }
)
_RESERVED_PREFIXES = ("proxy-", "x-forwarded-")
# The same kinds of header by the shape vendors name them, since a list of names always misses
# the next vendor's: client addresses (Fly-Client-IP, Incap-Client-IP, CF-Connecting-IPv6, PHP
# frameworks' Client-IP, Microsoft's X-Originating-IP, X-Remote-Addr, App Engine's
# X-Appengine-User-Ip), the user a front end authenticated (X-Remote-User, which applications
# behind an SSO proxy take as the signed-in user), the original target and scheme (nginx's
# X-Original-URI, Envoy's X-Envoy-Original-Path, X-Scheme, IIS's Front-End-Https) and a front
# end's own headers (Envoy, Azure Front Door, Azure App Service's X-WAWS-* and ARR's X-ARR-*, and
# Next.js's X-Middleware-*, whose X-Middleware-Subrequest skipped the application's middleware,
# CVE-2025-29927).
_ROUTING_PATTERNS = (
    "*client-ip*",
    "*connecting-ip*",
    "*originating-ip*",
    "*remote-ip*",
    "*remote-addr*",
    "*remote-user*",
    "*-user-ip",
    # The forwarded-client chain under other names (nginx ingress's X-Original-Forwarded-For,
    # X-Real-Forwarded-For, Forwarded-Host) and Cloudflare's Pseudo IPv4 (Cf-Pseudo-IPv4, and
    # the IPv6 spelling some readers look for).
    "*forwarded-for*",
    "forwarded-*",
    "*pseudo-ip*",
    "x-original-*",
    "x-envoy-*",
    "x-azure-*",
    "x-waws-*",
    "x-arr-*",
    "x-middleware-*",
    # Internal redirects a framework or web server acts on: Rack::Sendfile's X-Sendfile-Type
    # and nginx's X-Accel-* (X-Accel-Mapping, X-Accel-Redirect) serve any internal path.
    "x-sendfile*",
    "x-accel-*",
    "x-lighttpd-send-file",
    "x-scheme",
    "x-url-scheme",
    "front-end-https",
    # Host overrides beside X-Host and X-Forwarded-Server: X-HTTP-Host-Override (Google App
    # Engine and frameworks that honour it), X-Host-Override, under any vendor's prefix.
    "*host-override*",
    # Client addresses under CDN and WAF vendors' spellings: AWS CloudFront's
    # CloudFront-Viewer-Address, Sucuri's X-Sucuri-ClientIP (and X-Azure-ClientIP's shape),
    # Netlify's X-NF-Client-Connection-IP and Alibaba Cloud CDN's Ali-CDN-Real-IP.
    "*viewer-address*",
    "*clientip*",
    "*connection-ip*",
    "*real-ip*",
)
# Headers in which an SSO or TLS-terminating front end tells the application behind it whom it
# authenticated, which that application takes as the caller's identity: oauth2-proxy
# (X-Auth-Request-*), Azure App Service (X-MS-CLIENT-PRINCIPAL*, X-MS-TOKEN-*), Google IAP
# (X-Goog-Authenticated-*, X-Goog-IAP-JWT-Assertion), AWS ALB (X-Amzn-Oidc-*), Cloudflare Access
# (Cf-Access-*), Pomerium, Kong (X-Authenticated-*, X-Userinfo, X-Consumer-*, X-Credential-*,
# X-Anonymous-Consumer), Keycloak Gatekeeper / Louketo (X-Auth-<Claim> for every claim it is
# told to add, so all of X-Auth-*; not X-Auth-Token, an API key header some services use),
# authentik (X-Authentik-*), Vouch (X-Vouch-*), Tailscale (Tailscale-User-*), mod_auth_openidc
# (OIDC_CLAIM_*, OIDC_userinfo_json/_jwt, OIDC_id_token*, OIDC_access_token*,
# OIDC_refresh_token: all of OIDC*), Kubernetes' front proxy
# (X-Remote-*), Shibboleth (Shib-*), auth proxies' X-WEBAUTH-USER, and the client certificate a
# TLS front end verified (X-SSL-Client-Cert, X-ARR-ClientCert, SSL-Client-Verify, and the
# Cf-Cert-* headers of Cloudflare's mTLS: Cf-Cert-Verified, Cf-Cert-Subject-DN...). An editor who
# may set one names whomever they like to the EHR's API.
_IDENTITY_PATTERNS = (
    "x-auth-*",  # less _IDENTITY_FREE
    "x-authenticated-*",
    "x-userinfo",
    "x-authentik-*",
    "x-vouch-*",
    "tailscale-user-*",
    "oidc*",
    "x-consumer-*",
    "x-credential-*",
    "x-anonymous-consumer",
    "x-user",
    "x-user-id",
    "x-username",
    "x-email",
    "x-ms-client-principal*",
    "x-ms-token-*",
    "x-goog-authenticated-*",
    "x-goog-iap-*",
    "x-amzn-oidc-*",
    "cf-access-*",
    "x-pomerium-*",
    "x-remote-*",
    "remote-*",
    "shib-*",
    "*webauth*",
    "*jwt-assertion*",
    "*client-cert*",
    "*clientcert*",
    "*client-verify*",
    "*client-dn*",
    "*client-s-dn*",
    "*client-i-dn*",
    "ssl-client*",
    "x-ssl-*",
    "cf-cert-*",
)
# Names an identity pattern covers that customers' EHR APIs use for their own key.
_IDENTITY_FREE = frozenset({"x-auth-token"})
# The service token a client sends to reach an application behind Cloudflare Access (the rest
# of Cf-Access-* is what Access tells that application about the user it signed in). Sent, but
# from settings of their own: the secret is a credential, kept write-only (models.common).
_CF_ACCESS_TOKEN = frozenset({"cf-access-client-id", "cf-access-client-secret"})
# Headers that shape the EHR's answer, which the runtime reads as a whole: Range (and its older
# spelling Request-Range, which some servers still honour) gets part of a resource, If-* a 304
# with no body, Accept a format the runtime does not parse (application/fhir+xml for its JSON),
# Accept-Charset and Accept-Encoding an encoding it may not decode, Prefer an answer the runtime
# does not ask for (return=minimal leaves out the resource, respond-async a 202 to poll).
# Cache-Control and Pragma are read by every cache between the runtime and the EHR:
# only-if-cached makes a cache answer 504 without asking the EHR, max-stale lets it serve a
# patient's record as it was long ago. Accept-Language stays free: it picks the language of
# display text, not how the answer is read.
_ANSWER_PATTERNS = (
    "range",
    "request-range",
    "if-*",
    "accept",
    "accept-charset",
    "accept-encoding",
    "prefer",
    "cache-control",
    "pragma",
)
# Credentials: a custom header is plain text to every viewer, export and history entry, and it
# would replace the credential the runtime sends. Cloud Run (and Cloud Functions) check the
# identity token in X-Serverless-Authorization in place of Authorization.
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-serverless-authorization"}
)


def header_key(name: str) -> str:
    """The one header a name spells. CGI-style servers (PHP-FPM, WSGI, older Gunicorn) hand
    X_Forwarded_For to the application as the same HTTP_X_FORWARDED_FOR as X-Forwarded-For, and
    header names ignore case: the spellings are one header, for what is reserved and for what
    must be unique alike."""
    return name.lower().replace("_", "-")


def _check_header_name(value: str, info: ValidationInfo) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise PydanticCustomError("invalid_header_name", "must be an HTTP header name (a token)")
    if _stored(info):
        return value  # saved before these names were refused: still read, so it can be removed
    name = header_key(value)
    if name in _CREDENTIAL_HEADERS:
        raise PydanticCustomError(
            "reserved_header",
            "credentials do not belong in a custom header, which is shown as plain text: the "
            "runtime sends the EHR credential configured in the OAuth and EHR settings",
        )
    if name in _RESERVED_HEADERS or name.startswith(_RESERVED_PREFIXES):
        raise PydanticCustomError(
            "reserved_header",
            "is a hop-by-hop, framing or routing header, which the HTTP client sets itself",
        )
    if name in _ROUTING_HEADERS or any(fnmatchcase(name, p) for p in _ROUTING_PATTERNS):
        raise PydanticCustomError(
            "reserved_header",
            "names the request's target, method or client to the EHR's front end, which only "
            "the runtime decides",
        )
    if name in _CF_ACCESS_TOKEN:
        raise PydanticCustomError(
            "reserved_header",
            "a Cloudflare Access service token is sent from the header settings' "
            "cfAccessClientId and cfAccessClientSecret (the secret kept write-only), not from a "
            "custom header, which is shown as plain text",
        )
    if name not in _IDENTITY_FREE and any(fnmatchcase(name, p) for p in _IDENTITY_PATTERNS):
        raise PydanticCustomError(
            "reserved_header",
            "names the user or client certificate a front end authenticated, which the EHR's "
            "side takes as the caller's identity",
        )
    if any(fnmatchcase(name, pattern) for pattern in _ANSWER_PATTERNS):
        raise PydanticCustomError(
            "reserved_header",
            "decides what part of its answer the EHR (or a cache before it) sends, in which "
            "format, or how it encodes it, which the runtime decides: it reads the whole answer",
        )
    return value


# RFC 9110 field-value: visible ASCII, with spaces and tabs inside (leading and trailing ones are
# stripped). Obsolete text (bytes 0x80-0xFF) is refused too: clients encode it differently, and
# httpx refuses anything outside Latin-1, which would make every call to the EHR fail.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20\x09\x21-\x7e]*[\x21-\x7e])?")


def is_header_value(value: str) -> bool:
    """Whether ``value`` may be sent as an HTTP header's value: printable ASCII, with spaces and
    tabs inside only."""
    return _HEADER_VALUE.fullmatch(value) is not None


def _check_header_value(value: str, info: ValidationInfo) -> str:
    if any(ch in value for ch in "\r\n\0"):
        raise PydanticCustomError(
            "invalid_header_value", "must not contain line breaks or NUL characters"
        )
    if _stored(info) or _HEADER_VALUE.fullmatch(value):
        return value
    raise PydanticCustomError(
        "invalid_header_value",
        "must be printable ASCII (spaces and tabs inside only): no control characters or "
        "non-ASCII text",
    )


HeaderName = Annotated[str, _caps(128), AfterValidator(_check_header_name)]
HeaderValue = Annotated[str, _caps(1024), AfterValidator(_check_header_value)]
HeaderText = Annotated[str, _caps(SHORT_TEXT_MAX), AfterValidator(_check_header_value)]
"""Short text sent as an HTTP header value: printable ASCII, at most 256 characters."""


class NameValue(SettingsModel):
    """One entry of a mapping: a name and the value it maps to."""

    name: ShortText = Field(
        description=f"The name (unique within the mapping; at most {SHORT_TEXT_MAX} characters)."
    )
    value: ShortText = Field(
        description=f"The value the name maps to (at most {SHORT_TEXT_MAX} characters)."
    )


def _check_unique_names(entries: list[Any]) -> list[Any]:
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise PydanticCustomError("duplicate_name", "names must be unique within the mapping")
        seen.add(entry.name)
    return entries


Mapping = Annotated[
    list[NameValue],
    Field(max_length=MAPPING_MAX_ENTRIES),
    AfterValidator(_check_unique_names),
]
"""An ordered list of name/value pairs with unique names, at most 500 entries."""
