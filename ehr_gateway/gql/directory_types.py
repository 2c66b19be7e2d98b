"""The tenant directory's page and rows."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ehr_gateway.gql.enums import EhrProvider
from ehr_gateway.storage.directory import DirectoryRow


@strawberry.type(
    description="One tenant as the directory lists it: its EHR, version, readiness and last "
    "change, as stored with its current settings."
)
class TenantSummary:
    tenant_id: strawberry.ID = strawberry.field(description="The tenant's id.")
    provider: EhrProvider | None = strawberry.field(
        description="The tenant's active EHR; null when none is selected."
    )
    version: int = strawberry.field(description="The version of its current settings.")
    ready: bool = strawberry.field(
        description="Whether the current settings are ready, as `readiness(tenantId).ready` "
        "says: no check is MISSING."
    )
    missing_count: int = strawberry.field(
        description="How many checks of `readiness(tenantId)` are MISSING."
    )
    missing_paths: list[str] = strawberry.field(
        description="The settings those checks name, as dotted paths (e.g. ehr.jkuServerUrl, "
        "externalGateway); `readiness(tenantId)` says why each is needed."
    )
    changed_at: datetime | None = strawberry.field(
        description="When the current version was stored: when its document was sent to the "
        "database (by its writer, or, for a version whose writer stopped after storing it, by "
        "the gateway that completed it), not when its write began. Rows with `changedSince` "
        "come in this order."
    )
    changed_by: str | None = strawberry.field(description="Who stored it.")

    @classmethod
    def of(cls, row: DirectoryRow) -> TenantSummary:
        return cls(
            tenant_id=strawberry.ID(row.tenant_id),
            provider=row.provider,
            version=row.version,
            ready=row.ready,
            missing_count=row.missing,
            missing_paths=list(row.missing_paths),
            changed_at=row.changed_at,
            changed_by=row.changed_by,
        )


@strawberry.type(description="Where a page ends, and whether another follows.")
class PageInfo:
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page (opaque). Null when the page is empty "
        "and no `after` was given."
    )
    has_next_page: bool = strawberry.field(description="Whether more rows follow this page.")


@strawberry.type(description="A page of the tenant directory.")
class TenantPage:
    items: list[TenantSummary] = strawberry.field(description="The rows, in the page's order.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
