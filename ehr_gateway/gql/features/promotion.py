"""Promotion: exporting a tenant's configuration, importing it into another, and rolling back
to an earlier version."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from ehr_gateway.ehr.blocks import block_models
from ehr_gateway.gql.arguments import ContextInfo, TenantArg, VersionArg
from ehr_gateway.gql.audit_types import (
    FieldChange,
    ImportPreview,
    ImportResult,
)
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.enums import SettingsBlock
from ehr_gateway.gql.idempotency import Idempotent
from ehr_gateway.gql.readiness_types import Readiness
from ehr_gateway.gql.results import SettingsResult, ValidationFailed, settings_result
from ehr_gateway.resolvers import promotion
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.runtime.access import Permission


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ),
        description="The tenant's configuration as a portable JSON document for importSettings "
        "(how a sandbox's configuration is promoted to production). It holds no secrets and no "
        "identities (external gateway ids, signing keys, the JKU's fetched keys). Null when the "
        "tenant has no settings.",
    )
    async def export_settings(self, info: ContextInfo, tenant_id: TenantArg) -> JSON | None:
        return cast(JSON | None, await promotion.export_settings(info.context, tenant_id))


# What rollback and import may change (beyond identities, which both keep): every block.
_STORED_BLOCKS = block_models(
    SettingsBlock.EXTERNAL_GATEWAY,
    SettingsBlock.HEADERS,
    SettingsBlock.FHIR,
    SettingsBlock.EHR,
    SettingsBlock.OAUTH,
)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=[*needs(Permission.ROLLBACK, _STORED_BLOCKS, parts=("jku",)), Idempotent()],
        description="Store a new version whose settings equal those of an earlier version: a "
        "normal, audited write. External gateway ids and OAuth signing keys stay as they are now "
        "(a rotated id or key was rotated to revoke it): no id ever comes back from history; a "
        "provider with no external gateway now gets the version's connection under a new id.",
    )
    async def rollback_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        to_version: Annotated[
            int, strawberry.argument(description="The earlier version whose settings come back.")
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await promotion.rollback_settings(
            info.context, tenant_id, to_version, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.IMPORT, _STORED_BLOCKS, secrets=False), Idempotent()],
        description="Apply a document made by exportSettings (of this or another tenant) as one "
        "version, after validating all of it. The tenant keeps its own secrets, external gateway "
        "ids and signing keys (a document without an externalGateway leaves the tenant's "
        "connection as it is). With dryRun, only report what would change.",
    )
    async def import_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        document: Annotated[
            JSON, strawberry.argument(description="A document exportSettings produced.")
        ],
        dry_run: Annotated[
            bool,
            strawberry.argument(description="Only show what would change; store nothing."),
        ] = False,
        expected_version: VersionArg = None,
    ) -> ImportResult:
        if dry_run:
            preview = await promotion.preview_import(info.context, tenant_id, document)
            if isinstance(preview, Failed):
                return ValidationFailed.of(preview)
            return ImportPreview(
                changes=[FieldChange.of(change) for change in preview.changes],
                readiness=Readiness.of(tenant_id, preview.settings.provider, preview.readiness),
            )
        outcome = await promotion.import_settings(
            info.context, tenant_id, document, expected_version
        )
        return settings_result(outcome, info.context)
