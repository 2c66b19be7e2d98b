"""The audit log and its integrity, differences between versions, and import previews."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from ehr_gateway.gql.enums import register
from ehr_gateway.gql.readiness_types import Readiness
from ehr_gateway.gql.results import SettingsSaved, ValidationFailed, VersionConflict
from ehr_gateway.storage.audit import AuditEntry as StoredAuditEntry
from ehr_gateway.storage.integrity import BrokenLink as StoredBrokenLink
from ehr_gateway.storage.integrity import ChainReport, Log, Reason, TenantIntegrity


@strawberry.type(
    description="One changed field: its path and its values before and after. A secret shows "
    "only as {isSet, fingerprint, updatedAt}."
)
class FieldChange:
    path: str = strawberry.field(
        description="The field's dotted path, e.g. providers.EPIC.fhir.ssnIdentifier."
    )
    before: JSON | None = strawberry.field(description="Its value before; null when unset.")
    after: JSON | None = strawberry.field(description="Its value after; null when unset.")

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
    at: datetime = strawberry.field(description="When the write or attempt happened.")
    subject: str = strawberry.field(description="Who: the token's subject.")
    roles: list[str] = strawberry.field(description="The caller's roles at the time.")
    operation: str = strawberry.field(description="The GraphQL field, e.g. updateFhirSettings.")
    outcome: str = strawberry.field(description="SAVED or DENIED.")
    version: int | None = strawberry.field(description="The version stored (SAVED only).")
    changes: list[FieldChange] = strawberry.field(
        description="The fields the write changed (SAVED only; empty for DENIED)."
    )
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
    entries: list[AuditEntry] = strawberry.field(description="The entries, newest first.")
    has_more: bool = strawberry.field(description="Whether older entries follow.")
    next_before: str | None = strawberry.field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


@strawberry.type(description="What changed from one version to another.")
class SettingsDiff:
    from_version: int = strawberry.field(description="The version compared from.")
    to_version: int = strawberry.field(description="The version compared to.")
    changes: list[FieldChange] = strawberry.field(
        description="Every field whose value differs between the two versions."
    )


SettingsDiffResult = Annotated[
    SettingsDiff | ValidationFailed,
    strawberry.union(
        "SettingsDiffResult",
        description="The difference, or why the versions cannot be compared (one does not exist).",
    ),
]


@strawberry.type(description="What an import would change (dry run); nothing was stored.")
class ImportPreview:
    changes: list[FieldChange] = strawberry.field(
        description="Every field the import would change."
    )
    readiness: Readiness = strawberry.field(
        description="The tenant's readiness after the import: its missing checks name the "
        "secrets the document cannot carry (exports hold none) and the tenant does not hold, "
        "e.g. ehr.soapPassword; the import stores everything else."
    )


ImportResult = Annotated[
    SettingsSaved | ImportPreview | ValidationFailed | VersionConflict,
    strawberry.union(
        "ImportResult",
        description="The import was stored, or previewed (dryRun), or refused with nothing stored.",
    ),
]


# Registered in place (as gql.enums does): the storage enums are the GraphQL ones.
register(
    Log,
    {
        Log.HISTORY: "The settings history: every stored version.",
        Log.AUDIT: "The audit log: every write and every denied attempt.",
    },
    name="IntegrityLog",
    description="Which tamper-evident log.",
)
register(
    Reason,
    {
        Reason.MISSING: "The entry before it (by version or sequence) is not there.",
        Reason.OUT_OF_ORDER: "Another entry has its position.",
        Reason.UNCHAINED: "It carries no chain link: a history entry from before the chain "
        "not adopted yet (`ehr-gateway chain-legacy-history --tenant`), or an entry stripped of "
        "its link or inserted; nothing trusts it.",
        Reason.BROKEN_LINK: "It does not name the hash of the entry before it (an entry was "
        "removed, inserted or moved).",
        Reason.ALTERED: "Its content was changed.",
        Reason.BAD_MAC: "Its MAC does not verify (its hash or sealed secrets were rewritten).",
        Reason.UNKNOWN_KEY: "Its MAC was made with a key this deployment does not hold.",
    },
    name="BrokenLinkReason",
    description="Why an entry fails verification.",
)


@strawberry.type(description="The first entry of a log that fails verification.")
class BrokenLink:
    log: Log = strawberry.field(description="The log the entry is in.")
    version: int | None = strawberry.field(description="The history entry's version (HISTORY).")
    sequence: int | None = strawberry.field(
        description="The audit entry's sequence number (AUDIT); null for an entry that has none."
    )
    entry_id: strawberry.ID | None = strawberry.field(
        description="The audit entry's id, as auditLog shows it (AUDIT)."
    )
    at: datetime | None = strawberry.field(
        description="When the entry says it was written; null when the entry itself is missing."
    )
    reason: Reason = strawberry.field(description="Why the entry fails verification.")
    message: str = strawberry.field(description="The reason in words, for an operator.")

    @classmethod
    def of(cls, broken: StoredBrokenLink) -> BrokenLink:
        audit = broken.log is Log.AUDIT
        return cls(
            log=broken.log,
            version=None if audit else broken.position,
            sequence=broken.position if audit else None,
            entry_id=strawberry.ID(broken.entry_id) if audit and broken.entry_id else None,
            at=broken.at,
            reason=broken.reason,
            message=broken.message,
        )


@strawberry.type(description="How one log of a tenant verified.")
class ChainIntegrity:
    log: Log = strawberry.field(description="The log verified.")
    intact: bool = strawberry.field(
        description="Every entry verified to the log's end; no broken link."
    )
    checked_entries: int = strawberry.field(
        description="Chained entries verified (up to the first broken one)."
    )
    legacy_entries: int = strawberry.field(
        description="Audit-log entries written before the log was chained: older than its "
        "first chained entry, and vouched for by nothing. Always 0 for HISTORY: an unchained "
        "history entry is a broken link (UNCHAINED) until an operator adopts it."
    )
    head: int | None = strawberry.field(
        description="The version (HISTORY) or sequence number (AUDIT) of the last entry "
        "verified; null when none was."
    )
    head_hash: str | None = strawberry.field(
        description="That entry's hash. Kept outside the database (a ticket, a SIEM), it shows "
        "later whether entries up to it were removed from the end, which no chain can show on "
        "its own."
    )
    first_broken_link: BrokenLink | None = strawberry.field(
        description="The log's first entry that fails verification; null when intact."
    )

    @classmethod
    def of(cls, report: ChainReport) -> ChainIntegrity:
        return cls(
            log=report.log,
            intact=report.intact,
            checked_entries=report.checked,
            legacy_entries=report.legacy,
            head=report.head_position,
            head_hash=report.head_hash,
            first_broken_link=BrokenLink.of(report.broken) if report.broken else None,
        )


@strawberry.type(
    description="Whether a tenant's history and audit log are as the gateway wrote them: each "
    "entry is chained to the one before by a MAC keyed from the deployment's secret."
)
class AuditIntegrity:
    tenant_id: strawberry.ID = strawberry.field(description="The tenant verified.")
    intact: bool = strawberry.field(
        description="Both logs verified to their end with no broken link; false while "
        "`complete` is false (a walk that has not reached the end vouches for nothing yet)."
    )
    checked_entries: int = strawberry.field(
        description="Entries verified, both logs together, by this call and the calls before "
        "it in the same walk."
    )
    legacy_entries: int = strawberry.field(
        description="Audit-log entries from before the log was chained (history has none: an "
        "unchained history entry is a broken link, UNCHAINED)."
    )
    checked_at: datetime = strawberry.field(description="When the verification ran.")
    first_broken_link: BrokenLink | None = strawberry.field(
        description="The earliest broken link of the two logs; null when intact."
    )
    history: ChainIntegrity = strawberry.field(description="How the settings history verified.")
    audit_log: ChainIntegrity = strawberry.field(description="How the audit log verified.")
    complete: bool = strawberry.field(
        description="Both logs were read to their end (or to a broken link in each). False: "
        "this call verified as many entries as it may, with no broken link so far; call "
        "again with `after: nextAfter` to continue the walk."
    )
    next_after: str | None = strawberry.field(
        description="Where the walk continues: pass it as `after`, unchanged, to verify the "
        "next entries; null when complete. It carries the position and hash of the last entry "
        "verified in each log, MACed by the gateway: an edited or forged one is refused."
    )

    @classmethod
    def of(
        cls, verified: TenantIntegrity, checked_at: datetime, next_after: str | None = None
    ) -> AuditIntegrity:
        first = verified.first_broken
        return cls(
            tenant_id=strawberry.ID(verified.tenant_id),
            intact=verified.intact,
            checked_entries=verified.history.checked + verified.audit.checked,
            legacy_entries=verified.history.legacy + verified.audit.legacy,
            checked_at=checked_at,
            first_broken_link=BrokenLink.of(first) if first else None,
            history=ChainIntegrity.of(verified.history),
            audit_log=ChainIntegrity.of(verified.audit),
            complete=verified.complete,
            next_after=next_after,
        )
