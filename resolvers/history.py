"""A tenant's versions, newest first."""

from __future__ import annotations

from resolvers.context import Context
from resolvers.writes import check_tenant_id
from storage.repository import HistoryEntry

PAGE_MAX = 100


async def settings_history(
    context: Context, tenant_id: str, *, first: int, before: int | None
) -> tuple[list[HistoryEntry], bool]:
    """Up to ``first`` (1-100) versions older than ``before`` (all when None), newest first, and
    whether older ones remain."""
    if check_tenant_id(tenant_id):
        return [], False
    limit = min(max(first, 1), PAGE_MAX)
    return await context.repository.history(tenant_id, before=before, limit=limit)
