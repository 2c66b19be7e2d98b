"""History: a tenant's stored versions."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.gql.arguments import ContextInfo, TenantArg
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.history_types import SettingsHistoryPage, SettingsVersion
from ehr_gateway.gql.list_budget import charge
from ehr_gateway.gql.settings_types import SettingsSnapshot
from ehr_gateway.resolvers import history
from ehr_gateway.runtime.access import Permission


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ), description="A tenant's stored versions, newest first."
    )
    async def settings_history(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        first: Annotated[
            int,
            strawberry.argument(
                description="Page size, 1 to 100 (clamped). One operation may ask for 100 "
                "history and audit entries in all (COST_LIMIT past that)."
            ),
        ] = 20,
        before: Annotated[
            int | None,
            strawberry.argument(description="Only versions older than this one."),
        ] = None,
    ) -> SettingsHistoryPage:
        charge("settingsHistory", history.page_size(first))
        entries, has_more = await history.settings_history(
            info.context, tenant_id, first=first, before=before
        )
        versions = [
            SettingsVersion(
                id=strawberry.ID(f"SettingsVersion:{entry.tenant_id}:{entry.version}"),
                version=entry.version,
                changed_at=entry.changed_at,
                actor=entry.actor,
                changed_blocks=list(entry.changed_blocks),
                changed_paths=list(entry.changed_paths),
                settings=SettingsSnapshot.of(entry.settings, info.context),
            )
            for entry in entries
        ]
        return SettingsHistoryPage(
            versions=versions,
            has_more=has_more,
            next_before=versions[-1].version if has_more else None,
        )
