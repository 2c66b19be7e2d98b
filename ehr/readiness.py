"""Readiness: which mandatory settings a tenant still lacks, and which settings have no effect."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from ehr.athena import AthenaSettings, SendDataDecision
from ehr.blocks import TenantSettings
from ehr.common import EhrProvider, SettingsBlock
from ehr.epic import EpicOAuthSettings, EpicSettings
from ehr.identifiers import IdentifierDefaults, defaulted_fields
from ehr.secret import StoredSecret


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


# Mandatory settings per EHR (spec/NOTES.md), as (block, field).
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


def assess(tenant: TenantSettings | None, defaults: IdentifierDefaults) -> Readiness:
    """Every mandatory setting of the tenant's active EHR with its state, plus warnings for
    settings that are set but have no effect, and conditional requirements."""
    if tenant is None or tenant.provider is None:
        check = ReadinessCheck(
            SettingsBlock.PROVIDER, ("provider",), CheckState.MISSING, "no EHR provider selected"
        )
        return Readiness((check,), ())
    provider = tenant.provider
    checks = [ReadinessCheck(SettingsBlock.PROVIDER, ("provider",), CheckState.SET, "set")]
    for block, field in MANDATORY[provider]:
        model = tenant.block(provider, block)
        assert model is not None
        checks.append(_check(block, model, field, defaults))
    warnings: list[ReadinessWarning] = []
    ehr = tenant.block(provider, SettingsBlock.EHR)
    if isinstance(ehr, AthenaSettings):
        if ehr.send_data_decision is SendDataDecision.PATIENT_CASE:
            checks.append(_check(SettingsBlock.EHR, ehr, "case_class_for_send_data", defaults))
        warnings.extend(_athena_warnings(ehr))
    if isinstance(ehr, EpicSettings):
        oauth = tenant.block(provider, SettingsBlock.OAUTH)
        assert isinstance(oauth, EpicOAuthSettings)
        warnings.extend(_epic_warnings(ehr, oauth))
    return Readiness(tuple(checks), tuple(warnings))


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
    return found


def _epic_warnings(ehr: EpicSettings, oauth: EpicOAuthSettings) -> list[ReadinessWarning]:
    found = []
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
