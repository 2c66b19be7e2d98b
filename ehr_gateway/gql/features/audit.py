"""Audit: the audit log, its integrity and what changed between versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError

from ehr_gateway.gql.arguments import ContextInfo, TenantArg
from ehr_gateway.gql.audit_types import (
    AuditEntry,
    AuditIntegrity,
    AuditLogPage,
    FieldChange,
    SettingsDiff,
    SettingsDiffResult,
)
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.features.tenant_directory import BAD_USER_INPUT
from ehr_gateway.gql.list_budget import MAX_ENTRIES, charge
from ehr_gateway.gql.results import ValidationFailed
from ehr_gateway.resolvers import audit
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.runtime.access import Permission

# A verified entry is read and hashed, never sent: the operation's budget of entries it may
# ask for is charged one for every this many it may verify, so a full page takes it all.
_ENTRIES_PER_UNIT = audit.VERIFY_PAGE_MAX // MAX_ENTRIES


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ_AUDIT),
        description="The tenant's audit log, newest first: every stored version (who, roles, "
        "operation, changed fields with before and after, secrets redacted, request id) and "
        "attempts refused to callers of the tenant (a repeat within a minute is not kept again).",
    )
    async def audit_log(
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
            str | None, strawberry.argument(description="Only entries older than this id.")
        ] = None,
    ) -> AuditLogPage:
        charge("auditLog", audit.page_size(first))
        entries, has_more = await audit.audit_log(
            info.context, tenant_id, first=first, before=before
        )
        page = [AuditEntry.of(entry) for entry in entries]
        return AuditLogPage(
            entries=page, has_more=has_more, next_before=page[-1].id if has_more else None
        )

    @strawberry.field(
        extensions=needs(Permission.READ_AUDIT),
        description="Verify the tenant's history and audit log: every entry must be chained, "
        "by a MAC keyed from the deployment's secret, to the one before it. Names the first "
        "entry that was altered, removed, inserted or moved, and why. Reads every entry, "
        f"at most {audit.VERIFY_PAGE_MAX} a call: a tenant with more answers "
        "`complete: false` and a `nextAfter` to continue from, until `complete`. Charged "
        f"one history or audit entry of the operation's {MAX_ENTRIES} per "
        f"{_ENTRIES_PER_UNIT} entries it may verify (`first`).",
    )
    async def audit_integrity(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Continue the walk where the call before stopped: its `nextAfter`, "
                "unchanged. Anything else is refused (BAD_USER_INPUT naming `after`)."
            ),
        ] = None,
        first: Annotated[
            int,
            strawberry.argument(
                description=f"Entries to verify in this call, 1 to {audit.VERIFY_PAGE_MAX} "
                "(clamped)."
            ),
        ] = audit.VERIFY_PAGE_MAX,
    ) -> AuditIntegrity:
        size = audit.verify_page_size(first)
        charge("auditIntegrity", -(-size // _ENTRIES_PER_UNIT))
        try:
            verified, next_after = await audit.audit_integrity(
                info.context, tenant_id, first=size, after=after
            )
        except audit.BadCursor as error:
            raise GraphQLError(
                str(error), extensions={"code": BAD_USER_INPUT, "argument": error.argument}
            ) from None
        return AuditIntegrity.of(verified, datetime.now(UTC), next_after)

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="What changed between two versions (0 means no settings), field by field; "
        "secrets show only whether they are set and their fingerprint.",
    )
    async def settings_diff(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        from_version: Annotated[int, strawberry.argument(description="The older version.")],
        to_version: Annotated[int, strawberry.argument(description="The newer version.")],
    ) -> SettingsDiffResult:
        outcome = await audit.settings_diff(info.context, tenant_id, from_version, to_version)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        return SettingsDiff(
            from_version=from_version,
            to_version=to_version,
            changes=[FieldChange.of(change) for change in outcome],
        )
