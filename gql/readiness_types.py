"""Readiness: what a tenant still lacks before its integration can work."""

from __future__ import annotations

import strawberry

from ehr import readiness
from gql.enums import CheckState, EhrProvider, SettingsBlock


@strawberry.type(description="A mandatory setting and where it stands.")
class ReadinessCheck:
    block: SettingsBlock
    path: list[str] = strawberry.field(description='The setting, e.g. ["fhir", "mrnIdentifier"].')
    state: CheckState = strawberry.field(
        description="SET by the tenant, DEFAULT (a deployment default applies) or MISSING."
    )
    message: str

    @classmethod
    def of(cls, check: readiness.ReadinessCheck) -> ReadinessCheck:
        return cls(
            block=check.block, path=list(check.path), state=check.state, message=check.message
        )


@strawberry.type(
    description="A setting that has no effect as configured, or that a switched-on feature needs."
)
class ReadinessWarning:
    block: SettingsBlock
    path: list[str]
    code: str = strawberry.field(description="NO_EFFECT or REQUIRED_BY_OAUTH.")
    message: str


@strawberry.type(description="Whether a tenant's integration has every mandatory setting.")
class Readiness:
    tenant_id: strawberry.ID
    provider: EhrProvider | None
    ready: bool = strawberry.field(description="True when no mandatory setting is missing.")
    checks: list[ReadinessCheck] = strawberry.field(
        description="Every mandatory setting of the active EHR (or the provider, if none is "
        "selected), with its state."
    )
    missing: list[ReadinessCheck] = strawberry.field(
        description="The checks whose state is MISSING."
    )
    warnings: list[ReadinessWarning]

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
