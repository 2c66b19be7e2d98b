"""Settings: a tenant's integration settings and readiness, and the writes that save one block
at a time."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.ehr.blocks import block_models
from ehr_gateway.gql.arguments import ContextInfo, TenantArg, VersionArg
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.enums import EhrProvider, SettingsBlock
from ehr_gateway.gql.idempotency import Idempotent
from ehr_gateway.gql.inputs import (
    EhrSettingsInput,
    FhirSettingsInput,
    HeaderSettingsInput,
    OAuthSettingsInput,
    chosen_member,
)
from ehr_gateway.gql.readiness_types import Readiness
from ehr_gateway.gql.results import SettingsResult, settings_result
from ehr_gateway.gql.settings_types import IntegrationSettings
from ehr_gateway.resolvers import settings
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.runtime.access import Permission


async def read_integration_settings(context: Context, tenant_id: str) -> IntegrationSettings | None:
    """What ``integrationSettings`` resolves to, once its permission was checked: the resolver's
    and the whole-request fast path's (gql.fast_reads) one way to read it."""
    stored = await settings.get_settings(context, tenant_id)
    return None if stored is None else IntegrationSettings.of(stored, context)


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ),
        description="A tenant's integration settings; null if it has none yet.",
    )
    async def integration_settings(
        self, info: ContextInfo, tenant_id: TenantArg
    ) -> IntegrationSettings | None:
        return await read_integration_settings(info.context, tenant_id)

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="Which mandatory settings a tenant still lacks.",
    )
    async def readiness(self, info: ContextInfo, tenant_id: TenantArg) -> Readiness:
        stored, assessed = await settings.readiness(info.context, tenant_id)
        return Readiness.of(tenant_id, stored.provider if stored else None, assessed)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT), Idempotent()],
        description="Select the tenant's EHR. Every provider's settings are kept: switching "
        "back restores them.",
    )
    async def select_ehr_provider(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        provider: Annotated[EhrProvider, strawberry.argument(description="The EHR to select.")],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await settings.select_provider(
            info.context, tenant_id, provider, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT, block_models(SettingsBlock.HEADERS)), Idempotent()],
        description="Save the header settings of the active EHR.",
    )
    async def update_header_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            HeaderSettingsInput,
            strawberry.argument(description="The header settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.HEADERS, input, expected_version)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT), Idempotent()],
        description="Set the patient restriction expression (CEL over `age`); null removes it.",
    )
    async def update_patient_restriction(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        expression: Annotated[
            str | None,
            strawberry.argument(description="The CEL expression; null removes it. Required."),
        ] = strawberry.UNSET,
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        if expression is strawberry.UNSET:
            outcome: Outcome = Failed.one(
                ("expression",), "REQUIRED", "send an expression, or null to remove it"
            )
        else:
            outcome = await settings.update_patient_restriction(
                info.context, tenant_id, expression, expected_version
            )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT, block_models(SettingsBlock.FHIR)), Idempotent()],
        description="Save the FHIR settings of the active EHR.",
    )
    async def update_fhir_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            FhirSettingsInput,
            strawberry.argument(description="The FHIR settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.FHIR, input, expected_version)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT, block_models(SettingsBlock.EHR)), Idempotent()],
        description="Save the settings specific to the active EHR.",
    )
    async def update_ehr_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            EhrSettingsInput,
            strawberry.argument(description="The EHR settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.EHR, input, expected_version)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE, block_models(SettingsBlock.OAUTH)), Idempotent()],
        name="updateOAuthSettings",
        description="Save the OAuth settings of the active EHR (Epic).",
    )
    async def update_oauth_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            OAuthSettingsInput,
            strawberry.argument(description="The OAuth settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.OAUTH, input, expected_version)


async def _update_block(
    info: ContextInfo,
    tenant_id: str,
    block: SettingsBlock,
    one_of: object,
    expected_version: int | None,
) -> SettingsResult:
    member, patch = chosen_member(one_of)
    outcome = await settings.update_block(
        info.context, tenant_id, block, member, patch, expected_version
    )
    return settings_result(outcome, info.context)
