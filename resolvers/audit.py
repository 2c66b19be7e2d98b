"""What happened: the audit log, denied attempts, and the difference between two versions."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from ehr.blocks import TenantSettings
from ehr.changes import changed_paths, field_changes, settings_tree
from resolvers.access import Forbidden
from resolvers.context import Context
from resolvers.outcomes import Failed
from resolvers.tenants import check_tenant_id
from storage.audit import AuditEntry
from storage.integrity import TenantIntegrity, verify_tenant

logger = logging.getLogger("ehr_gateway.audit")

# The GraphQL operation (root field) being run, named in the audit entry of what it writes.
current_operation: ContextVar[str] = ContextVar("current_operation", default="")

PAGE_MAX = 100


def write_record(context: Context, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """What a stored version's history and audit entries say about who wrote it and how."""
    principal = context.principal
    return {
        "roles": sorted(role.value for role in principal.roles) if principal else [],
        "operation": current_operation.get(),
        "requestId": context.request_id,
        "changes": changes,
    }


async def record_denial(context: Context, denied: Forbidden, operation: str) -> None:
    """Log a refused attempt, and keep it in the audit log of the tenant it named."""
    principal = context.principal
    logger.warning(
        "denied: %s by %s: %s",
        operation,
        principal.subject if principal else "anonymous",
        denied,
        extra={"request_id": context.request_id},
    )
    if denied.tenant_id is None or principal is None or check_tenant_id(denied.tenant_id):
        return  # an id that names no tenant has no audit log to keep the attempt in
    await context.repository.audit.record_denial(
        tenant_id=denied.tenant_id,
        at=_now_ms(),
        subject=principal.subject,
        roles=sorted(role.value for role in principal.roles),
        operation=operation,
        permission=denied.permission.value,
        request_id=context.request_id,
    )


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold ms


async def audit_log(
    context: Context, tenant_id: str, *, first: int, before: str | None
) -> tuple[list[AuditEntry], bool]:
    # Entry ids are ASCII (the tenant id and a serial): other text, which may not even be valid
    # Unicode, names no entry, as an id that names no tenant has no log.
    if check_tenant_id(tenant_id) or (before is not None and not before.isascii()):
        return [], False
    return await context.repository.audit.page(tenant_id, max(1, min(first, PAGE_MAX)), before)


async def audit_integrity(context: Context, tenant_id: str) -> TenantIntegrity:
    """Verify the tenant's history and audit log, entry by entry (an id that names no tenant has
    no entries, and nothing to break)."""
    repository = context.repository
    tenant = "" if check_tenant_id(tenant_id) else tenant_id
    return await verify_tenant(repository.database, repository.chain, tenant)


async def settings_diff(
    context: Context, tenant_id: str, from_version: int, to_version: int
) -> list[dict[str, Any]] | Failed:
    """What changed from one version to another (either way round); version 0 is "nothing"."""
    refused = check_tenant_id(tenant_id)
    if refused:
        return refused
    trees = []
    for argument, version in (("fromVersion", from_version), ("toVersion", to_version)):
        if version < 0:
            return Failed.one((argument,), "OUT_OF_RANGE", "must be 0 or more")
        if version == 0:
            trees.append(settings_tree(TenantSettings(tenant_id=tenant_id)))
            continue
        entry = await context.repository.version(tenant_id, version)
        if entry is None:
            return Failed.one((argument,), "UNKNOWN_VERSION", "the tenant has no such version")
        trees.append(settings_tree(entry.settings))
    return field_changes(trees[0], trees[1], changed_paths(trees[0], trees[1]))
