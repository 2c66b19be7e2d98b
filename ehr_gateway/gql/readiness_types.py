"""Readiness: what a tenant still lacks before its integration can work."""

from __future__ import annotations

import strawberry

from ehr_gateway.ehr import readiness
from ehr_gateway.gql.enums import CheckState, EhrProvider, SettingsBlock


@strawberry.type(
    description="A setting the integration needs and where it stands: a mandatory setting of the "
    "spec, the external gateway, or what a function the saved settings turn on needs (the JWT "
    "Issuer URL, audience and discovered key set for pause and resume and click to call; the "
    "SOAP password once soapUsername is set; the OAuth client, token URL and signing key once "
    "useOauth is on). The message of a MISSING check names the function that needs it."
)
class ReadinessCheck:
    block: SettingsBlock = strawberry.field(description="The block the setting is in.")
    path: list[str] = strawberry.field(description='The setting, e.g. ["fhir", "mrnIdentifier"].')
    state: CheckState = strawberry.field(
        description="SET by the tenant, DEFAULT (a deployment default applies) or MISSING."
    )
    message: str = strawberry.field(
        description="The check in words; for MISSING, the function that needs the setting."
    )

    @classmethod
    def of(cls, check: readiness.ReadinessCheck) -> ReadinessCheck:
        return cls(
            block=check.block, path=list(check.path), state=check.state, message=check.message
        )


@strawberry.type(
    description="A setting that has no effect as configured, or that a switched-on feature needs."
)
class ReadinessWarning:
    block: SettingsBlock = strawberry.field(description="The block the setting is in.")
    path: list[str] = strawberry.field(description='The setting, e.g. ["ehr", "caseClass"].')
    code: str = strawberry.field(
        description="NO_EFFECT, REQUIRED_BY_OAUTH, REQUIRED_TO_SEND_DATA (Athena department id "
        "for send interactive records), EPIC_CLIENT_ID_MISMATCH (headers and OAuth settings "
        "name different clients), DEFAULT_JKU_PATTERN_WITHOUT_ISSUER or NOT_EPIC_FHIR_BASE "
        "(an Epic base URL and FHIR url prefix that do not end in api/FHIR/R4, STU3 or DSTU2)."
    )
    message: str = strawberry.field(description="The warning in words.")


@strawberry.type(description="Whether a tenant's integration has every mandatory setting.")
class Readiness:
    tenant_id: strawberry.ID = strawberry.field(description="The tenant assessed.")
    provider: EhrProvider | None = strawberry.field(
        description="The tenant's EHR; null when none is selected."
    )
    ready: bool = strawberry.field(
        description="True when no check is MISSING: every mandatory setting is there, and every "
        "function the saved settings turn on has what it needs to work."
    )
    checks: list[ReadinessCheck] = strawberry.field(
        description="Every mandatory setting of the active EHR (or the provider, if none is "
        "selected), then what the functions the saved settings turn on need, with its state."
    )
    missing: list[ReadinessCheck] = strawberry.field(
        description="The checks whose state is MISSING."
    )
    warnings: list[ReadinessWarning] = strawberry.field(
        description="Settings with no effect as saved, or that the spec makes conditionally "
        "necessary; they do not make the tenant unready."
    )

    @classmethod
    def of(
        cls, tenant_id: str, provider: EhrProvider | None, assessed: readiness.Readiness
    ) -> Readiness:
        return cls(
            tenant_id=strawberry.ID(tenant_id),
            provider=provider,
            ready=assessed.ready,
            checks=[ReadinessCheck.of(check) for check in assessed.checks],
            missing=[ReadinessCheck.of(check) for check in assessed.missing],
            warnings=[
                ReadinessWarning(
                    block=warning.block,
                    path=list(warning.path),
                    code=warning.code,
                    message=warning.message,
                )
                for warning in assessed.warnings
            ],
        )
