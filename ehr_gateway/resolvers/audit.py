"""What happened: the audit log, denied attempts, and the difference between two versions."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.changes import changed_paths, field_changes, settings_tree
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.runtime.access import Forbidden, Principal
from ehr_gateway.runtime.denials import DenialKind, loggable
from ehr_gateway.storage.audit import AuditEntry
from ehr_gateway.storage.client import error_summary, is_storage_full, is_unavailable
from ehr_gateway.storage.integrity import (
    TenantIntegrity,
    open_cursor,
    seal_cursor,
    verify_page,
)

# Refused attempts, whether or not an audit log keeps them: what a SIEM watches.
security_logger = logging.getLogger("ehr_gateway.security")

# The GraphQL operation (root field) being run, named in the audit entry of what it writes.
current_operation: ContextVar[str] = ContextVar("current_operation", default="")

PAGE_MAX = 100
# Entries of the two logs one auditIntegrity call verifies at most: a bounded walk that ends
# well inside the request's database deadline (5 s by default) even on a busy machine (about
# 1.3 ms an entry measured with the load average at 8-12 on 2 cores: bench/integrity_cost.py).
VERIFY_PAGE_MAX = 2000


class BadCursor(ValueError):
    """A cursor this deployment did not hand out for this tenant: names the argument."""

    def __init__(self, argument: str) -> None:
        super().__init__(
            f"{argument}: not a cursor of this tenant's verification: pass the nextAfter "
            "of the page before, unchanged"
        )
        self.argument = argument


def write_record(context: Context, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """What a stored version's history and audit entries say about who wrote it and how."""
    principal = context.principal
    return {
        "roles": sorted(role.value for role in principal.roles) if principal else [],
        "operation": current_operation.get(),
        "requestId": context.request_id,
        "changes": changes,
    }


async def _has_settings(context: Context, tenant_id: str | None) -> bool:
    if tenant_id is None or check_tenant_id(tenant_id):
        return False
    return (
        await context.settings_cache.read(
            tenant_id, context.repository.get, context.repository.committed_settings
        )
        is not None
    )


async def record_denial(context: Context, denied: Forbidden, operation: str) -> None:
    """Log and count a refused attempt; keep it in the audit log of the tenant it named when
    the caller belongs to that tenant, and it is not a repeat (``resolvers.denials``)."""
    principal = context.principal
    denials = context.denials
    kind = denials.kind(principal, denied)
    denials.count(kind)
    audited = (
        principal is not None
        and kind is DenialKind.PERMISSION
        # Staff belong to every tenant id, made-up ones too: only a tenant that exists has a
        # log to keep the attempt in (and only its attempts take room among the repeats).
        and await _has_settings(context, denied.tenant_id)
        and denials.should_audit(principal, denied, operation)
    )
    tenant = "-" if denied.tenant_id is None else loggable(denied.tenant_id)
    subject = loggable(principal.subject, 128) if principal else "anonymous"
    tenants = _tenants(principal)
    security_logger.warning(
        "denied: %s by %s (tenants %s) on tenant %s: missing %s (%s%s)",
        operation,
        subject,
        tenants,
        tenant,
        denied.permission.value,
        kind.value,
        ", audited" if audited else "",
        extra={
            "request_id": context.request_id,
            "operation": operation,
            "subject": subject,
            "tenants": tenants,
            "tenantId": tenant,
            "permission": denied.permission.value,
            "kind": kind.value,
            "audited": audited,
        },
    )
    if not audited:
        return
    assert principal is not None and denied.tenant_id is not None  # should_audit saw both
    try:
        await context.repository.audit.record_denial(
            tenant_id=denied.tenant_id,
            at=_now_ms(),
            subject=principal.subject,
            roles=sorted(role.value for role in principal.roles),
            operation=operation,
            permission=denied.permission.value,
            request_id=context.request_id,
        )
    except PyMongoError as error:
        if not (is_storage_full(error) or is_unavailable(error)):
            raise
        # The caller is refused whatever the audit log can take: a full disk or a database
        # away must not turn FORBIDDEN into a retryable error. The refusal is in the security
        # log above and counted; that its audit entry is missing is said here.
        denials.unaudited += 1
        security_logger.warning(
            "denied: %s by %s on tenant %s: not in the audit log (%s)",
            operation, subject, tenant, error_summary(error),
            extra={"request_id": context.request_id, "operation": operation, "tenantId": tenant},
        )  # fmt: skip


def _tenants(principal: Principal | None) -> str:
    """The caller's tenants for a log line: ``*`` for staff, at most 10 named."""
    if principal is None:
        return "-"
    if principal.tenants is None:
        return "*"
    named = sorted(principal.tenants)
    shown = ",".join(loggable(tenant) for tenant in named[:10])
    return shown if len(named) <= 10 else f"{shown},...({len(named)} tenants)"


def page_size(first: int) -> int:
    """The entries a request for ``first`` gets at most: 1 to PAGE_MAX."""
    return max(1, min(first, PAGE_MAX))


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
    return await context.repository.audit.page(tenant_id, page_size(first), before)


def verify_page_size(first: int) -> int:
    """The entries one verification call reads at most: 1 to VERIFY_PAGE_MAX."""
    return max(1, min(first, VERIFY_PAGE_MAX))


async def audit_integrity(
    context: Context, tenant_id: str, *, first: int = VERIFY_PAGE_MAX, after: str | None = None
) -> tuple[TenantIntegrity, str | None]:
    """Verify the tenant's history and audit log, entry by entry, at most ``first`` entries
    from where ``after`` says the call before stopped (an id that names no tenant has no
    entries, and nothing to break). Returns what is verified so far and, when entries remain,
    the cursor to continue with. BadCursor for a cursor not sealed for this tenant."""
    repository = context.repository
    keys = repository.chain
    tenant = "" if check_tenant_id(tenant_id) else tenant_id
    resume = None
    if after is not None:
        # Sealed with the id as asked (not the "" an invalid one reads as), so that one
        # tenant's cursor never continues another's walk.
        resume = open_cursor(after, keys, tenant_id)
        if resume is None:
            raise BadCursor("after")
    verified, more = await verify_page(
        repository.database, keys, tenant, resume, verify_page_size(first)
    )
    return verified, None if more is None else seal_cursor(more, keys, tenant_id)


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
