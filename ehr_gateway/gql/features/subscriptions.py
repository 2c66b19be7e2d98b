"""Subscriptions: runtime services and dashboards are told when a tenant's settings change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from ehr_gateway.gql.arguments import TenantArg
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.enums import SettingsBlock
from ehr_gateway.gql.settings_types import SettingsSnapshot
from ehr_gateway.resolvers.changes import SubscriptionRefused, open_changes
from ehr_gateway.resolvers.context import Context
from ehr_gateway.runtime.access import Permission
from ehr_gateway.runtime.broker import Delivery


@strawberry.type(description="A stored change to a tenant's settings.")
class ConfigurationChange:
    tenant_id: strawberry.ID = strawberry.field(description="The tenant whose settings changed.")
    version: int = strawberry.field(description="The version this change created.")
    changed_blocks: list[SettingsBlock] = strawberry.field(
        description="The blocks this change touched."
    )
    changed_at: datetime = strawberry.field(description="When it was stored.")
    actor: str = strawberry.field(description="Who stored it.")
    settings: SettingsSnapshot = strawberry.field(
        description="The settings as of this version: select only the fields you use."
    )
    versions_skipped: bool = strawberry.field(
        description="True when this subscriber fell too far behind and earlier versions of this "
        "tenant were dropped from its queue: configuration is state, so it gets the newest "
        "version instead of every step. Never true for configurationChanged with "
        "sinceVersion, which reads the versions it fell behind on from history. Otherwise "
        "every version arrives, in order."
    )

    @classmethod
    def of(cls, delivery: Delivery, context: Context) -> ConfigurationChange:
        entry = delivery.entry
        return cls(
            tenant_id=strawberry.ID(entry.tenant_id),
            version=entry.version,
            changed_blocks=list(entry.changed_blocks),
            changed_at=entry.changed_at,
            actor=entry.actor,
            settings=SettingsSnapshot.of(entry.settings, context),
            versions_skipped=delivery.versions_skipped,
        )


async def _changes(
    context: Context, tenant_ids: Sequence[str] | None, since_version: int | None, argument: str
) -> AsyncIterator[ConfigurationChange]:
    try:
        deliveries = await open_changes(context, tenant_ids, since_version, argument=argument)
    except SubscriptionRefused as refused:
        error = refused.error
        raise GraphQLError(
            f"{'.'.join(error.path)}: {error.message}",
            extensions={"code": error.code, "field": list(error.path)},
        ) from None
    return _changes_of(deliveries, context)


async def _changes_of(
    deliveries: AsyncIterator[Delivery], context: Context
) -> AsyncIterator[ConfigurationChange]:
    async for delivery in deliveries:
        yield ConfigurationChange.of(delivery, context)


@strawberry.type(description="Live changes of tenants' settings (over WebSocket).")
class Subscription:
    @strawberry.subscription(
        extensions=needs(Permission.SUBSCRIBE),
        description="Every stored change of one tenant's settings. With sinceVersion n, every "
        "version after n is sent first, in order, then live changes, with no gap and no "
        "duplicate: a client that reconnects with the last version it saw misses nothing; "
        "with 0 on a tenant that has no settings yet, its first version arrives when it is "
        "stored. Without it, only changes after the current version (refused NOT_FOUND on a "
        "tenant with no settings).",
    )
    async def configuration_changed(
        self,
        info: Info[Context, None],
        tenant_id: TenantArg,
        since_version: Annotated[
            int | None,
            strawberry.argument(description="The last version the client has (0 for all)."),
        ] = None,
    ) -> AsyncIterator[ConfigurationChange]:
        return await _changes(info.context, [tenant_id], since_version, "tenantId")

    @strawberry.subscription(
        extensions=needs(Permission.SUBSCRIBE),
        description="Stored changes of many tenants on one connection, for dashboards: the "
        "tenants listed (at most 1000), or every tenant when tenantIds is omitted. Each "
        "tenant's versions arrive in order.",
    )
    async def configuration_changes(
        self,
        info: Info[Context, None],
        tenant_ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(description="The tenants (at most 1000); omitted: every tenant."),
        ] = None,
    ) -> AsyncIterator[ConfigurationChange]:
        return await _changes(info.context, tenant_ids, None, "tenantIds")
