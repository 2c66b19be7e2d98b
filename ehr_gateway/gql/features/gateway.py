"""The external gateway: its id, the tenant it belongs to, and a test of its connection."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.ehr.blocks import block_models
from ehr_gateway.gql.arguments import ContextInfo, TenantArg, VersionArg
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.enums import SettingsBlock
from ehr_gateway.gql.gateway_types import (
    ConnectionTestResult,
    ExternalGatewayOwner,
    GatewayConnectionTest,
)
from ehr_gateway.gql.idempotency import Idempotent
from ehr_gateway.gql.inputs import (
    ExternalGatewayConnectionInput,
    plain,
)
from ehr_gateway.gql.results import SettingsResult, ValidationFailed, settings_result
from ehr_gateway.resolvers import gateway
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.runtime.access import Permission


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ),
        description="The tenant and EHR an external gateway id belongs to; null for an unknown "
        "or rotated id.",
    )
    async def resolve_external_gateway(
        self,
        info: ContextInfo,
        external_gateway_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The id the external gateway presents."),
        ],
    ) -> ExternalGatewayOwner | None:
        owner = await gateway.resolve_external_gateway(info.context, external_gateway_id)
        if owner is None:
            return None
        return ExternalGatewayOwner(tenant_id=strawberry.ID(owner[0]), provider=owner[1])


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=[
            *needs(Permission.INTEGRATE, block_models(SettingsBlock.EXTERNAL_GATEWAY)),
            Idempotent(),
        ],
        description="Save the external gateway connection of the active EHR. The first save "
        "generates the external gateway id and base path URL; later saves keep them.",
    )
    async def create_external_gateway(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        connection: Annotated[
            ExternalGatewayConnectionInput,
            strawberry.argument(description="Where the EHR's API is and what it is."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await gateway.create_external_gateway(
            info.context, tenant_id, plain(connection), expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE), Idempotent()],
        description="Give the active EHR's external gateway a new id and base path URL. The old "
        "id stops resolving at once.",
    )
    async def regenerate_external_gateway_id(
        self, info: ContextInfo, tenant_id: TenantArg, expected_version: VersionArg = None
    ) -> SettingsResult:
        outcome = await gateway.regenerate_external_gateway_id(
            info.context, tenant_id, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE), Idempotent(stores=False)],
        description="Call the EHR's FHIR metadata endpoint (the external gateway's base URL plus "
        "the FHIR url prefix) and report what answered. Stores nothing.",
    )
    async def test_external_gateway_connection(
        self, info: ContextInfo, tenant_id: TenantArg
    ) -> ConnectionTestResult:
        outcome = await gateway.check_connection(info.context, tenant_id)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        return GatewayConnectionTest.of(outcome)
