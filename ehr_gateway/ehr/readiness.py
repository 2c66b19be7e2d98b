"""Readiness: which mandatory settings a tenant still lacks, and which settings have no effect."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cache, lru_cache
from itertools import pairwise
from urllib.parse import urlsplit

from pydantic import BaseModel
from pydantic.alias_generators import to_camel as _to_camel

from ehr_gateway.ehr.athena import AthenaSettings, SendDataDecision
from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import (
    EhrProvider,
    GenericHeaderSettings,
    JkuSnapshot,
    SettingsBlock,
    fhir_base_url,
)
from ehr_gateway.ehr.epic import (
    EpicFhirSettings,
    EpicHeaderSettings,
    EpicOAuthSettings,
    EpicSettings,
)
from ehr_gateway.ehr.identifiers import IdentifierDefaults, defaulted_fields
from ehr_gateway.ehr.secret import StoredSecret

# Readiness is assessed for every version written (its directory row): the few field names it
# names are converted once, not by pydantic's regular expressions on every check.
to_camel = cache(_to_camel)


class CheckState(Enum):
    """Where a mandatory setting stands."""

    SET = "SET"
    DEFAULT = "DEFAULT"
    MISSING = "MISSING"


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    block: SettingsBlock
    path: tuple[str, ...]
    state: CheckState
    message: str


@dataclass(frozen=True, slots=True)
class ReadinessWarning:
    block: SettingsBlock
    path: tuple[str, ...]
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: tuple[ReadinessCheck, ...]
    warnings: tuple[ReadinessWarning, ...]

    @property
    def missing(self) -> tuple[ReadinessCheck, ...]:
        return tuple(check for check in self.checks if check.state is CheckState.MISSING)

    @property
    def ready(self) -> bool:
        return not self.missing


# The version of the rules below. Readiness is stored with each tenant's current settings (for
# the tenant directory's filter), assessed under these rules: change it with the rules that
# decide what is stored (the checks: ready, missing), and every gateway re-assesses the stored
# readiness when it starts (about 1.1 ms of CPU per tenant). Warnings are not stored: a new
# warning (such as NOT_EPIC_FHIR_BASE) needs no new version.
RULES_VERSION = 1


def assessment_basis(defaults: IdentifierDefaults) -> str:
    """What a stored assessment depends on besides the settings: the rules' version and which
    identifiers have a deployment default (their values do not change readiness). A stored
    assessment made on another basis is out of date."""
    defaulted = sorted(name for name, value in defaults.model_dump().items() if value is not None)
    return f"{RULES_VERSION}:{','.join(to_camel(name) for name in defaulted)}"


# Mandatory settings per EHR, as (block, field): the settings the spec's tables mark "Mandatory"
# (Epic: the three header settings, the SSN and MRN identifiers, context and the JKU Server URL;
# Athena: the practice id; Cerner: the SSN and MRN identifiers; Ellkay: its two keys).
MANDATORY: dict[EhrProvider, tuple[tuple[SettingsBlock, str], ...]] = {
    EhrProvider.EPIC: (
        (SettingsBlock.HEADERS, "epic_client_id"),
        (SettingsBlock.HEADERS, "epic_user_id"),
        (SettingsBlock.HEADERS, "epic_user_id_type"),
        (SettingsBlock.FHIR, "ssn_identifier"),
        (SettingsBlock.FHIR, "mrn_identifier"),
        (SettingsBlock.EHR, "context"),
        (SettingsBlock.EHR, "jku_server_url"),
    ),
    EhrProvider.ATHENA: ((SettingsBlock.EHR, "practice_id"),),
    EhrProvider.CERNER: (
        (SettingsBlock.FHIR, "ssn_identifier"),
        (SettingsBlock.FHIR, "mrn_identifier"),
    ),
    EhrProvider.ELLKAY: (
        (SettingsBlock.EHR, "subscriber_key"),
        (SettingsBlock.EHR, "site_service_key"),
    ),
}


def _check(
    block: SettingsBlock, model: BaseModel, field: str, defaults: IdentifierDefaults
) -> ReadinessCheck:
    path = (block.value.lower(), to_camel(field))
    value = getattr(model, field)
    if value.is_set if isinstance(value, StoredSecret) else value is not None:
        return ReadinessCheck(block, path, CheckState.SET, "set")
    if field in defaulted_fields(model, defaults):
        return ReadinessCheck(block, path, CheckState.DEFAULT, "the deployment default applies")
    return ReadinessCheck(block, path, CheckState.MISSING, "mandatory and not set")


class _Blocks(dict[SettingsBlock, BaseModel | None]):
    """A tenant's blocks of one EHR, each looked up on first use."""

    def __init__(self, tenant: TenantSettings, provider: EhrProvider) -> None:
        super().__init__()
        self._tenant, self._provider = tenant, provider

    def __missing__(self, block: SettingsBlock) -> BaseModel | None:
        model = self[block] = self._tenant.block(self._provider, block)
        return model


def assess(tenant: TenantSettings | None, defaults: IdentifierDefaults) -> Readiness:
    """Every mandatory setting of the tenant's active EHR with its state, plus warnings for
    settings that are set but have no effect, and conditional requirements."""
    if tenant is None or tenant.provider is None:
        check = ReadinessCheck(
            SettingsBlock.PROVIDER, ("provider",), CheckState.MISSING, "no EHR provider selected"
        )
        return Readiness((check,), ())
    provider = tenant.provider
    # Each block looked up once, when first needed: several mandatory settings share one, and
    # readiness is assessed on every write.
    blocks = _Blocks(tenant, provider)
    checks = [ReadinessCheck(SettingsBlock.PROVIDER, ("provider",), CheckState.SET, "set")]
    for block, field in MANDATORY[provider]:
        model = blocks[block]
        assert model is not None
        checks.append(_check(block, model, field, defaults))
    checks.append(_external_gateway(tenant, provider))
    headers = blocks[SettingsBlock.HEADERS]
    if isinstance(headers, GenericHeaderSettings) and headers.cf_access_client_id is not None:
        # An import stores the id alone (exports carry no secret): Cloudflare refuses it so.
        checks.append(
            _needed(
                SettingsBlock.HEADERS,
                ("headers", "cfAccessClientSecret"),
                headers.cf_access_client_secret.is_set,
                "needed to reach the EHR behind Cloudflare Access: cfAccessClientId is set; set "
                "the secret on this tenant (exports never carry secrets)",
            )
        )
    warnings: list[ReadinessWarning] = []
    ehr = blocks[SettingsBlock.EHR]
    if isinstance(ehr, AthenaSettings):
        if ehr.send_data_decision is SendDataDecision.PATIENT_CASE:
            checks.append(_check(SettingsBlock.EHR, ehr, "case_class_for_send_data", defaults))
        warnings.extend(_athena_warnings(ehr))
    if isinstance(ehr, EpicSettings):
        headers, oauth = blocks[SettingsBlock.HEADERS], blocks[SettingsBlock.OAUTH]
        fhir = blocks[SettingsBlock.FHIR]
        assert isinstance(headers, EpicHeaderSettings) and isinstance(oauth, EpicOAuthSettings)
        assert isinstance(fhir, EpicFhirSettings)
        checks.extend(_epic_runtime_checks(tenant, ehr, oauth))
        base_url = getattr(tenant.provider_settings(provider).external_gateway, "base_url", None)
        warnings.extend(_epic_warnings(ehr, headers, oauth, fhir, base_url))
    return Readiness(tuple(checks), tuple(warnings))


def _external_gateway(tenant: TenantSettings, provider: EhrProvider) -> ReadinessCheck:
    path = ("externalGateway",)
    if tenant.provider_settings(provider).external_gateway is not None:
        return ReadinessCheck(SettingsBlock.EXTERNAL_GATEWAY, path, CheckState.SET, "set")
    return ReadinessCheck(
        SettingsBlock.EXTERNAL_GATEWAY,
        path,
        CheckState.MISSING,
        "no external gateway: every call to the EHR goes through its connection",
    )


# The functions Epic's JWTs serve: verifyEpicJwt refuses every token while one of their needs is
# missing, so the spec's "optional" JWT Issuer URL is required in practice (the JKU Server URL,
# which only these functions use, is mandatory).
_JWT_FUNCTIONS = "pause and resume and click to call (verifyEpicJwt)"


def _epic_runtime_checks(
    tenant: TenantSettings, ehr: EpicSettings, oauth: EpicOAuthSettings
) -> list[ReadinessCheck]:
    """What the Epic functions the saved settings turn on need beyond the mandatory settings."""
    stored = tenant.provider_settings(EhrProvider.EPIC)
    found = [
        _needed(
            SettingsBlock.EHR,
            ("ehr", "jwtIssuerUrl"),
            ehr.jwt_issuer_url is not None,
            f"needed by {_JWT_FUNCTIONS}: every JWT's issuer is checked against it",
        ),
        _key_set(stored, ehr),
    ]
    audience = ("ehr", "jwtAudience")
    if ehr.jwt_audience is not None:
        found.append(ReadinessCheck(SettingsBlock.EHR, audience, CheckState.SET, "set"))
    elif stored.external_gateway is not None:
        found.append(
            ReadinessCheck(
                SettingsBlock.EHR,
                audience,
                CheckState.DEFAULT,
                "the external gateway's base path URL is the expected audience",
            )
        )
    else:
        found.append(
            _needed(
                SettingsBlock.EHR,
                audience,
                False,
                f"needed by {_JWT_FUNCTIONS}: set it, or create the external gateway whose "
                "base path URL is the audience otherwise",
            )
        )
    if ehr.soap_username is not None:
        found.append(
            _needed(
                SettingsBlock.EHR,
                ("ehr", "soapPassword"),
                ehr.soap_password.is_set,
                "needed by Prescription Refill over SOAP: soapUsername is set; set the "
                "password on this tenant (exports never carry secrets)",
            )
        )
    if ehr.use_oauth:
        for field in ("epic_client_id", "oauth_token_url"):
            found.append(
                _needed(
                    SettingsBlock.OAUTH,
                    ("oauth", to_camel(field)),
                    getattr(oauth, field) is not None,
                    "needed by the OAuth token exchange, which useOauth turns on",
                )
            )
        found.append(
            _needed(
                SettingsBlock.OAUTH,
                ("oauthSigningKeys",),
                bool(stored.signing_keys),
                "needed by the OAuth token exchange, which useOauth turns on: generate a "
                "signing key (generateOAuthSigningKey) and register its JWK Set URL with Epic",
            )
        )
    return found


def stale_key_set(recorded: JkuSnapshot, ehr: EpicSettings) -> str | None:
    """Why the recorded key set is not the one the current settings name, if it is not: the
    JKU Server URL, the issuer or the default pattern changed since it was discovered (by a
    block update, an import or a rollback). An integrator who moves a tenant off a key set
    (the wrong one, or a compromised one) must not go on trusting it until someone thinks of
    running discovery again, so verifyEpicJwt and readiness both read this one rule."""
    if recorded.url != ehr.jku_server_url:
        return "the JKU Server URL changed since its key set was discovered: run refreshJku"
    if ehr.enable_default_jku_server_url_pattern and recorded.issuer_url != ehr.jwt_issuer_url:
        return (
            "the default JKU Server URL pattern derives the key set from the JWT Issuer URL, "
            "and the recorded one was not discovered from it: run refreshJku"
        )
    return None


def _key_set(stored: ProviderSettings, ehr: EpicSettings) -> ReadinessCheck:
    path = ("jkuKeySet",)
    if stored.jku is None:
        why = (
            "keys come only from a key set discovered by discoverJku, and none has been (not "
            "knowing the URL: make a click-to-call request to the base path URL, then "
            "adoptObservedJku what observedJku shows)"
        )
    elif (stale := stale_key_set(stored.jku, ehr)) is not None:
        why = stale
    else:
        return ReadinessCheck(SettingsBlock.EHR, path, CheckState.SET, "set")
    return ReadinessCheck(
        SettingsBlock.EHR, path, CheckState.MISSING, f"needed by {_JWT_FUNCTIONS}: {why}"
    )


def _needed(block: SettingsBlock, path: tuple[str, ...], present: bool, why: str) -> ReadinessCheck:
    if present:
        return ReadinessCheck(block, path, CheckState.SET, "set")
    return ReadinessCheck(block, path, CheckState.MISSING, why)


def _inactive(field: str, switch: str) -> ReadinessWarning:
    return ReadinessWarning(
        SettingsBlock.EHR,
        ("ehr", to_camel(field)),
        "NO_EFFECT",
        f"{to_camel(field)} is set but only applies when {to_camel(switch)} is on",
    )


def _athena_warnings(ehr: AthenaSettings) -> list[ReadinessWarning]:
    found = []
    if ehr.patient_mrn_custom_field_id is not None and not ehr.patient_mrn:
        found.append(_inactive("patient_mrn_custom_field_id", "patient_mrn"))
    if ehr.custom_field_mapping and not ehr.custom_field_enabled:
        found.append(_inactive("custom_field_mapping", "custom_field_enabled"))
    fields_set = ehr.model_fields_set
    if "cache_providers_duration_ttl" in fields_set and not ehr.cache_providers_enabled:
        found.append(_inactive("cache_providers_duration_ttl", "cache_providers_enabled"))
    if "cache_departments_duration_ttl" in fields_set and not ehr.cache_departments_enabled:
        found.append(_inactive("cache_departments_duration_ttl", "cache_departments_enabled"))
    if ehr.case_class_for_send_data is not None and (
        ehr.send_data_decision is not SendDataDecision.PATIENT_CASE
    ):
        found.append(
            ReadinessWarning(
                SettingsBlock.EHR,
                ("ehr", "caseClassForSendData"),
                "NO_EFFECT",
                "caseClassForSendData only applies when sendDataDecision is PATIENT_CASE",
            )
        )
    sends_data = (
        ehr.send_data_decision is not None
        or ehr.send_recording_url
        or ehr.send_data_after_missed_call
    )
    if sends_data and ehr.department_id_for_send_interactive_records is None:
        found.append(
            ReadinessWarning(
                SettingsBlock.EHR,
                ("ehr", "departmentIdForSendInteractiveRecords"),
                "REQUIRED_TO_SEND_DATA",
                "Athena needs the department id for send interactive records to send data to "
                "the EHR (sendDataDecision, sendRecordingUrl or sendDataAfterMissedCall is set)",
            )
        )
    return found


# Epic serves its FHIR API at <instance>/api/FHIR/<version>. Epic's documents write it so; the
# IIS servers Epic runs on match paths ignoring case, so api/fhir/r4 reaches it too and is
# not flagged.
_EPIC_FHIR_VERSIONS = frozenset({"r4", "stu3", "dstu2"})
EPIC_FHIR_PATH_MESSAGE = (
    "Epic serves FHIR at the instance's api/FHIR/<version> (R4, STU3 or DSTU2), e.g. "
    "https://host/Interconnect-PRD/api/FHIR/R4; the base URL followed by the FHIR url prefix "
    "does not end there once, so every FHIR call would miss Epic's API: put api/FHIR/R4 at the "
    "end of the base URL or in the url prefix, not both"
)


# Readiness is assessed for every version written and every readiness read: a tenant's FHIR base
# is looked at once, not split again each time (uncached, a fifth of an Epic assessment).
@lru_cache(maxsize=4096)
def is_epic_fhir_base(url: str) -> bool:
    """Whether ``url``'s path ends in api/FHIR/<version> (R4, STU3, DSTU2), ignoring case, with
    no other api/FHIR/ in it: the instance root, the spec's example prefix /FHIR/R4 or the path
    written in both the base URL and the prefix all miss Epic's API."""
    segments = [segment.lower() for segment in urlsplit(url).path.split("/") if segment]
    fhir_paths = sum(pair == ("api", "fhir") for pair in pairwise(segments))
    return (
        fhir_paths == 1
        and segments[-3:-1] == ["api", "fhir"]
        and segments[-1] in _EPIC_FHIR_VERSIONS
    )


def _epic_warnings(
    ehr: EpicSettings,
    headers: EpicHeaderSettings,
    oauth: EpicOAuthSettings,
    fhir: EpicFhirSettings,
    base_url: str | None,
) -> list[ReadinessWarning]:
    found = []
    if base_url is not None and not is_epic_fhir_base(fhir_base_url(base_url, fhir.url_prefix)):
        found.append(
            ReadinessWarning(
                SettingsBlock.EXTERNAL_GATEWAY,
                ("externalGateway", "baseUrl"),
                "NOT_EPIC_FHIR_BASE",
                EPIC_FHIR_PATH_MESSAGE,
            )
        )
    if ehr.enable_default_jku_server_url_pattern and ehr.jwt_issuer_url is None:
        found.append(
            ReadinessWarning(
                SettingsBlock.EHR,
                ("ehr", "jwtIssuerUrl"),
                "DEFAULT_JKU_PATTERN_WITHOUT_ISSUER",
                "enableDefaultJkuServerUrlPattern is on, but the key set URL is derived from "
                "the JWT Issuer URL, which is not set",
            )
        )
    if (
        headers.epic_client_id is not None
        and oauth.epic_client_id is not None
        and headers.epic_client_id != oauth.epic_client_id
    ):
        found.append(
            ReadinessWarning(
                SettingsBlock.HEADERS,
                ("headers", "epicClientId"),
                "EPIC_CLIENT_ID_MISMATCH",
                "the Epic Client ID sent in the headers differs from oauth.epicClientId, the "
                "client Epic issues tokens to",
            )
        )
    if ehr.soap_password.is_set and ehr.soap_username is None:
        found.append(
            ReadinessWarning(
                SettingsBlock.EHR,
                ("ehr", "soapPassword"),
                "NO_EFFECT",
                "soapPassword is set but soapUsername is not (an import keeps the tenant's own "
                "secrets)",
            )
        )
    if ehr.oauth_base_path is not None and not ehr.use_oauth:
        found.append(_inactive("oauth_base_path", "use_oauth"))
    if ehr.use_oauth:
        for field in ("epic_client_id", "oauth_token_url"):
            if getattr(oauth, field) is None:
                found.append(
                    ReadinessWarning(
                        SettingsBlock.OAUTH,
                        ("oauth", to_camel(field)),
                        "REQUIRED_BY_OAUTH",
                        f"useOauth is on but {to_camel(field)} is not set",
                    )
                )
    return found
