"""The audit log, differences between versions, and import previews."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from gql.results import SettingsSaved, ValidationFailed, VersionConflict
from storage.audit import AuditEntry as StoredAuditEntry


@strawberry.type(
    description="One changed field: its path and its values before and after. A secret shows "
    "only as {isSet, fingerprint, updatedAt}."
)
class FieldChange:
    path: str = strawberry.field(description="e.g. providers.EPIC.fhir.ssnIdentifier")
    before: JSON | None
    after: JSON | None

    @classmethod
    def of(cls, change: Mapping[str, Any]) -> FieldChange:
        return cls(
            path=change["path"],
            before=cast(JSON, change.get("before")),
            after=cast(JSON, change.get("after")),
        )


@strawberry.type(description="One audited write or denied attempt.")
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Pass as `before` to page past it.")
    at: datetime
    subject: str = strawberry.field(description="Who: the token's subject.")
    roles: list[str] = strawberry.field(description="The caller's roles at the time.")
    operation: str = strawberry.field(description="The GraphQL field, e.g. updateFhirSettings.")
    outcome: str = strawberry.field(description="SAVED or DENIED.")
    version: int | None = strawberry.field(description="The version stored (SAVED only).")
    changes: list[FieldChange]
    request_id: str = strawberry.field(description="The request's id (also in the logs).")
    missing_permission: str | None = strawberry.field(
        description="The permission the caller lacked (DENIED only)."
    )

    @classmethod
    def of(cls, entry: StoredAuditEntry) -> AuditEntry:
        return cls(
            id=strawberry.ID(entry.id),
            at=entry.at,
            subject=entry.subject,
            roles=list(entry.roles),
            operation=entry.operation,
            outcome=entry.outcome,
            version=entry.version,
            changes=[FieldChange.of(change) for change in entry.changes],
            request_id=entry.request_id,
            missing_permission=entry.missing_permission,
        )


@strawberry.type(description="A page of audit entries, newest first.")
class AuditLogPage:
    entries: list[AuditEntry]
    has_more: bool
    next_before: str | None = strawberry.field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


@strawberry.type(description="What changed from one version to another.")
class SettingsDiff:
    from_version: int
    to_version: int
    changes: list[FieldChange]


SettingsDiffResult = Annotated[
    SettingsDiff | ValidationFailed, strawberry.union("SettingsDiffResult")
]


@strawberry.type(description="What an import would change (dry run); nothing was stored.")
class ImportPreview:
    changes: list[FieldChange]


ImportResult = Annotated[
    SettingsSaved | ImportPreview | ValidationFailed | VersionConflict,
    strawberry.union("ImportResult"),
]
