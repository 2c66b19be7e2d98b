"""Verifying a tenant's history and audit log: the first entry whose link is broken, and why.

Each log is walked in its order (history by version, the audit log by sequence number). An
entry is sound when it is chained, comes right after the entry before it, names that entry's
hash as its ``prev``, its content still gives its hash, and its MAC verifies under the key it
names. Entries written before the chain existed (no ``chain``) are counted as legacy: they may
only come before the first chained entry, and nothing vouches for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.chain import AUDIT_LOG, GENESIS, HISTORY_LOG, entry_fault
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import HISTORY, SETTINGS
from ehr_gateway.storage.secrets import ChainKeys


class Log(Enum):
    HISTORY = "HISTORY"
    AUDIT = "AUDIT"


class Reason(Enum):
    MISSING = "MISSING"  # the entry before it (by version or sequence) is not there
    OUT_OF_ORDER = "OUT_OF_ORDER"  # a second entry at a version or sequence number
    UNCHAINED = "UNCHAINED"  # no MAC, though the chain had begun
    BROKEN_LINK = "BROKEN_LINK"  # it does not name the hash of the entry before it
    ALTERED = "ALTERED"  # its content no longer gives its hash
    BAD_MAC = "BAD_MAC"  # its MAC does not verify: hash or sealed secrets rewritten
    UNKNOWN_KEY = "UNKNOWN_KEY"  # made with a key this deployment does not hold


_EXPLAINED = {
    Reason.MISSING: "the entry before it is missing",
    Reason.OUT_OF_ORDER: "another entry has the same position",
    Reason.UNCHAINED: "it carries no MAC, though entries before it do",
    Reason.BROKEN_LINK: "it does not follow the entry before it (one was removed, inserted "
    "or moved)",
    Reason.ALTERED: "its content was changed after it was written",
    Reason.BAD_MAC: "its MAC does not verify (its hash or sealed secrets were rewritten)",
    Reason.UNKNOWN_KEY: "its MAC was made with a key that is not configured "
    "(EHRGW_PREVIOUS_ENCRYPTION_KEYS)",
}


@dataclass(frozen=True, slots=True)
class BrokenLink:
    log: Log
    position: int | None  # the version (history) or sequence number (audit log); None: none
    entry_id: str
    at: datetime | None
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    log: Log
    checked: int  # chained entries verified before the first broken one
    legacy: int  # entries from before the chain, unverified
    head_position: int | None  # the last chained entry verified: its version or sequence
    head_hash: str | None
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


@dataclass(frozen=True, slots=True)
class TenantIntegrity:
    tenant_id: str
    history: ChainReport
    audit: ChainReport

    @property
    def intact(self) -> bool:
        return self.history.intact and self.audit.intact

    @property
    def first_broken(self) -> BrokenLink | None:
        """The earlier (by time) of the two logs' first broken links."""
        found = [report.broken for report in (self.history, self.audit) if report.broken]
        if len(found) == 2 and found[0].at and found[1].at and found[1].at < found[0].at:
            return found[1]
        return found[0] if found else None


def _broken(
    log: Log, row: Mapping[str, Any], position: int | None, reason: Reason, detail: str = ""
) -> BrokenLink:
    at = row.get("changedAt" if log is Log.HISTORY else "at")
    return BrokenLink(
        log=log,
        position=position,
        entry_id=str(row.get("_id", "")),
        at=at if isinstance(at, datetime) else None,
        reason=reason,
        message=detail or _EXPLAINED[reason],
    )


async def _walk(
    log: Log,
    rows: AsyncIterator[dict[str, Any]],
    field: str,
    keys: ChainKeys,
    *,
    legacy_first: bool,
) -> tuple[ChainReport, int]:
    """Verify ``rows`` (in ``field`` order). With ``legacy_first``, entries without a chain
    before the first chained one are legacy. Returns the report and the last position seen."""
    kind = HISTORY_LOG if log is Log.HISTORY else AUDIT_LOG
    name = "version" if log is Log.HISTORY else "sequence"
    checked = legacy = last = 0
    prev: str | None = None  # the hash the next entry must name; None: the chain has not begun
    head_position: int | None = None

    def report(broken: BrokenLink | None) -> ChainReport:
        return ChainReport(log, checked, legacy, head_position, prev, broken)

    async for row in rows:
        position = row.get(field)
        if not isinstance(position, int) or isinstance(position, bool):
            return report(_broken(log, row, None, Reason.ALTERED, f"it has no {name} number")), last
        if position > last + 1:
            detail = (
                f"{name} {last + 1} is missing before it"
                if position == last + 2
                else f"{name}s {last + 1} to {position - 1} are missing before it"
            )
            return report(_broken(log, row, position, Reason.MISSING, detail)), last
        if position <= last:
            return report(_broken(log, row, position, Reason.OUT_OF_ORDER)), last
        chain = row.get("chain")
        if not isinstance(chain, dict):
            if prev is not None or not legacy_first:
                return report(_broken(log, row, position, Reason.UNCHAINED)), last
            legacy, last = legacy + 1, position
            continue
        if chain.get("prev") != (GENESIS if prev is None else prev):
            return report(_broken(log, row, position, Reason.BROKEN_LINK)), last
        fault = entry_fault(kind, row, keys)
        if fault is not None:
            return report(_broken(log, row, position, Reason(fault))), last
        prev, last, head_position = str(chain["hash"]), position, position
        checked += 1
    return report(None), last


async def _verify_history(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> ChainReport:
    rows = db[HISTORY].find({"tenantId": tenant_id}, sort=[("version", ASCENDING)])
    report, last = await _walk(Log.HISTORY, aiter(rows), "version", keys, legacy_first=True)
    if report.broken is not None:
        return report
    # The settings are never stored ahead of their history entry: a document at a version
    # history lacks means the newest entries were removed.
    document = await db[SETTINGS].find_one({"_id": tenant_id}, projection={"version": 1})
    current = int((document or {}).get("version") or 0)
    if current > last:
        detail = f"the settings are at version {current}, history ends at version {last}"
        missing = BrokenLink(Log.HISTORY, last + 1, "", None, Reason.MISSING, detail)
        return ChainReport(
            Log.HISTORY, report.checked, report.legacy, report.head_position,
            report.head_hash, missing,
        )  # fmt: skip
    return report


async def _verify_audit(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> ChainReport:
    entries = db[AUDIT]
    chained = entries.find(
        {"tenantId": tenant_id, "seq": {"$exists": True}}, sort=[("seq", ASCENDING)]
    )
    report, _ = await _walk(Log.AUDIT, aiter(chained), "seq", keys, legacy_first=False)
    legacy = await entries.count_documents({"tenantId": tenant_id, "seq": {"$exists": False}})
    broken = report.broken
    if broken is None and legacy:
        # Entries from before the chain are all older than its first entry: one that is not
        # was put there since.
        first = await entries.find_one({"tenantId": tenant_id, "seq": 1}, projection={"order": 1})
        if first is not None:
            late = await entries.find_one(
                {"tenantId": tenant_id, "seq": {"$exists": False}, "order": {"$gt": first["order"]}}
            )
            if late is not None:
                broken = _broken(
                    Log.AUDIT, late, None, Reason.UNCHAINED,
                    "it carries no MAC and no sequence number, and is newer than the chain's "
                    "first entry",
                )  # fmt: skip
    return ChainReport(
        Log.AUDIT, report.checked, legacy, report.head_position, report.head_hash, broken
    )


async def verify_tenant(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> TenantIntegrity:
    return TenantIntegrity(
        tenant_id,
        await _verify_history(db, keys, tenant_id),
        await _verify_audit(db, keys, tenant_id),
    )


async def tenants(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    """Every tenant that has history or audit entries."""
    found = set(await db[HISTORY].distinct("tenantId"))
    found |= set(await db[AUDIT].distinct("tenantId"))
    return sorted(str(tenant) for tenant in found)


async def verify_database(
    url: str, database: str, keys: ChainKeys, tenant_id: str | None
) -> list[TenantIntegrity]:
    """Verify one tenant, or every tenant with entries, of the database at ``url``."""
    client = connect(url)
    try:
        db = client[database]
        names = [tenant_id] if tenant_id is not None else await tenants(db)
        return [await verify_tenant(db, keys, name) for name in names]
    finally:
        await client.close()


def describe(report: ChainReport) -> str:
    """One log's outcome in words: what verified, or its first broken link."""
    log, unit = ("history", "version") if report.log is Log.HISTORY else ("audit log", "sequence")
    legacy = f", {report.legacy} legacy (unchained) before them" if report.legacy else ""
    if report.broken is None:
        if report.head_position is None:
            return f"{log}: intact, no chained entries{legacy}"
        return (
            f"{log}: intact, {report.checked} entries verified{legacy}; head {unit} "
            f"{report.head_position} hash {report.head_hash}"
        )
    broken = report.broken
    where = f"{unit} {broken.position}" if broken.position is not None else "an entry"
    entry = f" (entry {broken.entry_id})" if report.log is Log.AUDIT and broken.entry_id else ""
    when = f" written {broken.at.isoformat()}" if broken.at else ""
    return (
        f"{log}: BROKEN at {where}{entry}{when}: {broken.reason.value}: {broken.message} "
        f"({report.checked} entries verified before it{legacy})"
    )
