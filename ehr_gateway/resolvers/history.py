"""A tenant's versions, newest first."""

from __future__ import annotations

from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.storage.repository import HistoryEntry

PAGE_MAX = 100


def page_size(first: int) -> int:
    """The versions a request for ``first`` gets at most: 1 to PAGE_MAX."""
    return min(max(first, 1), PAGE_MAX)


async def settings_history(
    context: Context, tenant_id: str, *, first: int, before: int | None
) -> tuple[list[HistoryEntry], bool]:
    """Up to ``first`` (1-100) versions older than ``before`` (all when None), newest first, and
    whether older ones remain."""
    if check_tenant_id(tenant_id):
        return [], False
    return await context.repository.history(tenant_id, before=before, limit=page_size(first))
