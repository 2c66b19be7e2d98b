"""Verifying a tenant's history and audit log: the first entry whose link is broken, and why.

Each log is walked in its order (history by version, the audit log by sequence number). An
entry is sound when it is chained, comes right after the entry before it, names that entry's
hash as its ``prev``, its content still gives its hash, and its MAC verifies under the key it
names. A history entry without a chain is a fault wherever it is (UNCHAINED): nothing trusts
one (reads, rollback, the feed), whether it was written before the chain and not yet adopted
(``ehr-gateway chain-legacy-history``) or stripped of its chain. Audit-log entries written
before the chain (no sequence number) are counted as legacy: they may only be older than the
chain's first entry, and only in a tenant whose history was adopted (storage.legacy), whose
version 1 entry records, under its MAC, how many there were and a hash over them: the walk
checks both once the sweep has read them all. A tenant whose version 1 a gateway chained has no
audit entry from before the chain, so an unchained one there is UNCHAINED wherever it is dated.
(While version 1 does not verify, history is reported broken and the audit log's unchained
entries older than its chain are counted as legacy, as nothing says otherwise.)

The audit log's unchained entries are not in its sequence order, so each page also sweeps the
tenant's entries by time (``order``) for them, up to the newest time among the chained entries
verified so far, and to the end once those are all verified: the sweep's range never holds many
more entries than the page verified, so no call reads the whole log. A range on text never
reads an entry whose ``order`` a database writer left out or retyped, so once the sweep reaches
the end, the unchained entries' two ends by ``order`` are read for one.

A walk may be cut into pages of a bounded number of entries (``verify_page``): each page ends
with where each log stands (its last position and the hash the next entry must name), and the
next page starts by reading that last entry again, so a page joins the one before it as two
entries join, and an entry removed or changed at the seam is found. The API hands that point
out as a cursor MACed under the chain key (``seal_cursor``), so a caller cannot move it past
entries nobody verified.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.chain import (
    AUDIT_LOG,
    GENESIS,
    HISTORY_LOG,
    entry_fault,
    legacy_audit_digest,
)
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import HISTORY, SETTINGS
from ehr_gateway.storage.secrets import ChainKeys
from ehr_gateway.storage.stored_numbers import is_stored_number
from ehr_gateway.storage.tenant_filter import tenant_is

WALK_PAGE = 2000  # entries a find reads at most when nothing bounds the walk but its end


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
    Reason.UNCHAINED: "it carries no chain link: not adopted (written before the chain: "
    "`ehr-gateway chain-legacy-history --tenant`) or stripped of it; nothing trusts it",
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
    complete: bool = True  # False: the walk stopped at its page's bound; more entries follow

    @property
    def intact(self) -> bool:
        return self.complete and self.broken is None


@dataclass(frozen=True, slots=True)
class TenantIntegrity:
    tenant_id: str
    history: ChainReport
    audit: ChainReport

    @property
    def complete(self) -> bool:
        return self.history.complete and self.audit.complete

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


@dataclass(frozen=True, slots=True)
class Walked:
    """Where the walk of one log stands: what it verified, and where the next page starts."""

    last: int = 0  # the last position read (legacy entries included); 0: none yet
    prev: str | None = None  # the hash the next entry must name; None: the chain has not begun
    head_position: int | None = None
    checked: int = 0
    legacy: int = 0
    done: bool = False
    broken: BrokenLink | None = None
    # The audit log's sweep for unchained entries (by ``order``): the first chained entry's
    # order, the newest order among the chained entries verified, the order swept up to, and
    # whether the sweep reached the log's end.
    first_order: str = ""
    high: str = ""
    swept: str = ""
    swept_all: bool = False
    # History: the audit entries from before the chain its verified version 1 records (-1: not
    # verified, nothing known; 0: none, a gateway chained it from the start) and their hash.
    # The audit log: the hash over the unchained entries swept so far.
    allowed: int = -1
    digest: str = GENESIS

    def report(self, log: Log) -> ChainReport:
        return ChainReport(
            log, self.checked, self.legacy, self.head_position, self.prev, self.broken, self.done
        )


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a paged verification of a tenant continues: both logs' walks so far."""

    history: Walked
    audit: Walked


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


def _boundary_fault(
    log: Log, row: Mapping[str, Any] | None, walked: Walked, keys: ChainKeys
) -> BrokenLink | None:
    """A page after the first starts by reading again the last entry the page before it read:
    still there, and still the entry that page verified (its hash is the one carried over),
    or the link between the two pages is broken."""
    name = "version" if log is Log.HISTORY else "sequence"
    if row is None or row.get("version" if log is Log.HISTORY else "seq") != walked.last:
        detail = f"{name} {walked.last}, verified by an earlier page of this walk, is gone"
        return BrokenLink(log, walked.last, "", None, Reason.MISSING, detail)
    chain = row.get("chain")
    if walked.prev is None:  # a legacy entry: it must still carry no chain
        if isinstance(chain, dict):
            return _broken(log, row, walked.last, Reason.ALTERED, "it changed since an "
                           "earlier page of this walk read it")  # fmt: skip
        return None
    if not isinstance(chain, dict) or chain.get("hash") != walked.prev:
        return _broken(log, row, walked.last, Reason.ALTERED, "it changed since an earlier "
                       "page of this walk verified it")  # fmt: skip
    fault = entry_fault(HISTORY_LOG if log is Log.HISTORY else AUDIT_LOG, row, keys)
    return None if fault is None else _broken(log, row, walked.last, Reason(fault))


async def _walk(
    log: Log,
    rows: AsyncIterator[dict[str, Any]],
    field: str,
    keys: ChainKeys,
    *,
    legacy_first: bool,
    start: Walked,
    limit: int | None,
) -> Walked:
    """Verify ``rows`` (in ``field`` order) from ``start``, at most ``limit`` of them (None: all).
    With ``legacy_first``, entries without a chain before the first chained one are legacy.
    When ``start`` is a page's end, ``rows`` begin with the entry it ended at."""
    kind = HISTORY_LOG if log is Log.HISTORY else AUDIT_LOG
    name = "version" if log is Log.HISTORY else "sequence"
    checked, legacy, last = start.checked, start.legacy, start.last
    prev, head_position = start.prev, start.head_position
    first_order, high = start.first_order, start.high
    allowed, digest = start.allowed, start.digest
    read = 0

    def walked(broken: BrokenLink | None = None, *, done: bool = True) -> Walked:
        return replace(
            start, last=last, prev=prev, head_position=head_position, checked=checked,
            legacy=legacy, done=done, broken=broken, first_order=first_order, high=high,
            allowed=allowed, digest=digest,
        )  # fmt: skip

    if start.last:
        first = await anext(rows, None)
        unjoined = _boundary_fault(log, first, start, keys)
        if unjoined is not None:
            return walked(unjoined)
    async for row in rows:
        if limit is not None and read == limit:
            return walked(done=False)  # a row beyond the page: the next page starts here
        read += 1
        position = row.get(field)
        if not is_stored_number(position):
            return walked(_broken(log, row, None, Reason.ALTERED, f"it has no {name} number"))
        if position > last + 1:
            detail = (
                f"{name} {last + 1} is missing before it"
                if position == last + 2
                else f"{name}s {last + 1} to {position - 1} are missing before it"
            )
            return walked(_broken(log, row, position, Reason.MISSING, detail))
        if position <= last:
            return walked(_broken(log, row, position, Reason.OUT_OF_ORDER))
        chain = row.get("chain")
        if not isinstance(chain, dict):
            if prev is not None or not legacy_first:
                return walked(_broken(log, row, position, Reason.UNCHAINED))
            legacy, last = legacy + 1, position
            continue
        if chain.get("prev") != (GENESIS if prev is None else prev):
            return walked(_broken(log, row, position, Reason.BROKEN_LINK))
        fault = entry_fault(kind, row, keys)
        if fault is not None:
            return walked(_broken(log, row, position, Reason(fault)))
        prev, last, head_position = str(chain["hash"]), position, position
        checked += 1
        if log is Log.HISTORY and position == 1:
            allowed, digest = _adoption(row)
        order = row.get("order")
        if isinstance(order, str):
            first_order = order if position == 1 else first_order
            high = max(high, order)
    return walked()


def _adoption(first: Mapping[str, Any]) -> tuple[int, str]:
    """What a verified version 1 entry records of the tenant's audit entries from before the
    chain (storage.legacy): how many, and their hash; none when a gateway chained it."""
    adopted = first.get("adopted")
    if isinstance(adopted, dict):
        count, digest = adopted.get("legacyAuditEntries"), adopted.get("legacyAuditDigest")
        if is_stored_number(count) and isinstance(digest, str):
            return max(count, 0), digest
    return 0, GENESIS


def _rows(
    collection: AsyncCollection[dict[str, Any]],
    query: dict[str, Any],
    field: str,
    start: Walked,
    limit: int | None,
) -> AsyncIterator[dict[str, Any]]:
    """The log's entries from the one ``start`` ended at (read again, to check that the pages
    join), ``limit`` of them and one more (to know whether more follow), in one batch."""
    if start.last:
        query = {**query, field: {"$gte": start.last}}
    if limit is None:
        return aiter(collection.find(query, sort=[(field, ASCENDING)]))
    wanted = limit + 2
    return aiter(collection.find(query, sort=[(field, ASCENDING)], limit=wanted, batch_size=wanted))


async def _verify_history(
    db: AsyncDatabase[dict[str, Any]],
    keys: ChainKeys,
    tenant_id: str,
    start: Walked,
    limit: int | None,
) -> Walked:
    rows = _rows(db[HISTORY], {"tenantId": tenant_is(tenant_id)}, "version", start, limit)
    walked = await _walk(
        Log.HISTORY, rows, "version", keys, legacy_first=False, start=start, limit=limit
    )
    if walked.broken is not None or not walked.done:
        return walked
    # The settings are never stored ahead of their history entry: a document at a version
    # history lacks means the newest entries were removed.
    document = await db[SETTINGS].find_one({"_id": tenant_id}, projection={"version": 1})
    current = (document or {}).get("version")
    # A version of another type is a database writer's too, but no sign that entries were
    # removed (the tenant's reads refuse the document: its seal does not verify); a number
    # of any size is compared, and only the first missing version is shown.
    if isinstance(current, int) and not isinstance(current, bool) and current > walked.last:
        detail = f"the settings are at version {current}, history ends at version {walked.last}"
        missing = BrokenLink(Log.HISTORY, walked.last + 1, "", None, Reason.MISSING, detail)
        return replace(walked, broken=missing)
    return walked


async def _verify_audit(
    db: AsyncDatabase[dict[str, Any]],
    keys: ChainKeys,
    tenant_id: str,
    start: Walked,
    limit: int | None,
    adopted: Walked,
) -> Walked:
    """The audit log's chain by sequence number, then the sweep for its unchained entries up to
    where the chain's verified entries reach in time; ``limit`` bounds the entries of both.
    ``adopted``: the history's walk, which says what audit entries from before the chain its
    version 1 records."""
    entries = db[AUDIT]
    # What the page before swept short of (its budget ran out) first, so the range a sweep
    # reads never holds much more than one page's entries.
    walked = await _sweep(entries, tenant_id, start, limit, adopted, to_end=False)
    budget = _left(limit, walked.legacy - start.legacy)
    if walked.broken is not None:
        return replace(walked, done=True)
    if budget is not None and budget <= 0:
        return walked
    before = walked.checked
    query = {"tenantId": tenant_is(tenant_id), "seq": {"$exists": True}}
    rows = _rows(entries, query, "seq", walked, budget)
    walked = await _walk(
        Log.AUDIT, rows, "seq", keys, legacy_first=False, start=walked, limit=budget
    )
    if walked.broken is not None:
        return walked
    chained_done = walked.done
    walked = await _sweep(
        entries, tenant_id, walked, _left(budget, walked.checked - before), adopted,
        to_end=chained_done,
    )  # fmt: skip
    return replace(walked, done=chained_done and (walked.swept_all or walked.broken is not None))


def _left(budget: int | None, used: int) -> int | None:
    return None if budget is None else budget - used


async def _sweep(
    entries: AsyncCollection[dict[str, Any]],
    tenant_id: str,
    walked: Walked,
    budget: int | None,
    adopted: Walked,
    *,
    to_end: bool,
) -> Walked:
    """Look for the audit log's unchained entries (no sequence number) after ``walked.swept``
    in time, up to ``walked.high`` (to the end with ``to_end``), reading at most ``budget``
    of them (None: no bound). One older than the chain's first entry is legacy, if the
    history's version 1 (``adopted``) allows entries from before the chain at all; any other
    was put there since. Once all are read, they must be those adoption recorded."""
    if walked.swept_all or (not to_end and walked.swept >= walked.high):
        return walked
    if budget is not None and budget <= 0:
        return walked
    bounds: dict[str, str] = {"$gt": walked.swept}
    if not to_end:
        bounds["$lte"] = walked.high
    cursor = entries.find(
        {"tenantId": tenant_is(tenant_id), "seq": {"$exists": False}, "order": bounds},
        # Adopted entries are read whole, to hash them as adoption did.
        projection=None if adopted.allowed > 0 else {"order": 1, "at": 1},
        sort=[("order", ASCENDING)],
        limit=0 if budget is None else budget + 1,
    )
    found = await cursor.to_list()
    legacy, swept, digest = walked.legacy, walked.swept, walked.digest
    for row in found[: len(found) if budget is None else budget]:
        order = str(row.get("order", ""))
        late = None
        if walked.first_order and order > walked.first_order:
            late = "is newer than the chain's first entry"
        elif adopted.allowed == 0:
            late = "this tenant's history was chained from its first version, so none of its "
            late += "audit entries predates the chain"
        elif adopted.allowed > 0 and legacy >= adopted.allowed:
            late = f"adoption recorded {adopted.allowed} audit entries from before the chain, "
            late += "and this one is beyond them"
        if late is not None:
            unchained = _broken(
                Log.AUDIT, row, None, Reason.UNCHAINED,
                f"it carries no MAC and no sequence number, and {late}",
            )  # fmt: skip
            return replace(walked, legacy=legacy, swept=swept, digest=digest, broken=unchained)
        if adopted.allowed > 0:
            try:
                digest = legacy_audit_digest(digest, row)
            except TypeError:  # a value of a type no gateway stores: not what was adopted
                digest = ""
        legacy, swept = legacy + 1, order
    if budget is not None and len(found) > budget:
        # More to sweep: the next page.
        return replace(walked, legacy=legacy, swept=swept, digest=digest)
    if to_end:
        ended = replace(walked, legacy=legacy, swept=swept, digest=digest, swept_all=True)
        unordered = await _unordered(entries, tenant_id, adopted)
        return replace(ended, broken=unordered or _not_adopted(ended, adopted))
    return replace(walked, legacy=legacy, swept=walked.high, digest=digest)


async def _unordered(
    entries: AsyncCollection[dict[str, Any]], tenant_id: str, adopted: Walked
) -> BrokenLink | None:
    """An unchained audit entry whose ``order`` is not text (left out, null, a number, an
    object), which only a database writer stores and the sweep's range on text never reads,
    though the audit log shows it: UNCHAINED, or ALTERED where adoption recorded entries from
    before the chain (its hash over them then no longer matches what the sweep read). Another
    type sorts below all text (null, numbers) or, on MongoDB, above it (objects, dates), so the
    unchained entries' two ends by order hold any: two finds of one entry, once per walk, on
    the tenant's order index."""
    for direction in (ASCENDING, DESCENDING):
        row = await entries.find_one(
            {"tenantId": tenant_is(tenant_id), "seq": {"$exists": False}},
            projection={"order": 1, "at": 1},
            sort=[("order", direction)],
        )
        if row is None:
            return None
        if isinstance(row.get("order"), str):
            continue
        if adopted.allowed > 0:
            detail = "it has no text sort key (order)"
            return _broken(Log.AUDIT, row, None, Reason.ALTERED, detail)
        detail = "it carries no MAC, no sequence number and no text sort key (order)"
        return _broken(Log.AUDIT, row, None, Reason.UNCHAINED, detail)
    return None


def _not_adopted(walked: Walked, adopted: Walked) -> BrokenLink | None:
    """Once every unchained audit entry is swept: whether they are the ones adoption recorded
    (as many, the same hash); None when they are, or when nothing recorded any."""
    if adopted.allowed <= 0:
        return None
    if walked.legacy < adopted.allowed:
        detail = (
            f"adoption recorded {adopted.allowed} audit entries from before the chain, "
            f"{walked.legacy} are left"
        )
        return BrokenLink(Log.AUDIT, None, "", None, Reason.MISSING, detail)
    if walked.digest != adopted.digest:
        detail = "the audit entries from before the chain are not those adoption recorded"
        return BrokenLink(Log.AUDIT, None, "", None, Reason.ALTERED, detail)
    return None


async def verify_tenant(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> TenantIntegrity:
    """Both logs, every entry: however long it takes (the command line's walk). Read in pages
    all the same: the embedded server reads every entry a find matches before it answers the
    first batch, so one find over a long history holds all of it in memory at once."""
    verified, resume = await verify_page(db, keys, tenant_id, None, WALK_PAGE)
    while resume is not None:
        verified, resume = await verify_page(db, keys, tenant_id, resume, WALK_PAGE)
    return verified


async def verify_page(
    db: AsyncDatabase[dict[str, Any]],
    keys: ChainKeys,
    tenant_id: str,
    resume: Resume | None,
    limit: int | None,
) -> tuple[TenantIntegrity, Resume | None]:
    """Verify the tenant's logs from ``resume`` (None: from the start), history first, reading
    at most ``limit`` entries of the two together (None: no bound). Returns what is verified so
    far and, when entries remain, where the next page resumes."""
    history = resume.history if resume is not None else Walked()
    audit = resume.audit if resume is not None else Walked()
    budget = limit
    if not history.done:
        before = history.checked + history.legacy
        history = await _verify_history(db, keys, tenant_id, history, budget)
        if budget is not None:
            budget -= history.checked + history.legacy - before
    if history.done and not audit.done and (budget is None or budget > 0):
        audit = await _verify_audit(db, keys, tenant_id, audit, budget, history)
    verified = TenantIntegrity(tenant_id, history.report(Log.HISTORY), audit.report(Log.AUDIT))
    return verified, None if verified.complete else Resume(history, audit)


# A cursor is MACed under the chain key with a label no entry's MAC message starts with
# ("history" / "audit"), so a cursor's MAC can never stand for an entry's, nor the reverse.
_CURSOR_LABEL = b"integrity-cursor\0"
_CURSOR_MAX = 4096  # characters: what a cursor this module seals stays well under


def _walked_fields(walked: Walked) -> list[Any]:
    broken = walked.broken
    return [
        walked.last, walked.prev, walked.head_position, walked.checked, walked.legacy,
        walked.done, walked.first_order, walked.high, walked.swept, walked.swept_all,
        walked.allowed, walked.digest,
        None if broken is None else [
            broken.log.value, broken.position, broken.entry_id,
            None if broken.at is None else broken.at.isoformat(), broken.reason.value,
            broken.message,
        ],
    ]  # fmt: skip


def _walked(fields: Any) -> Walked:
    last, prev, head_position, checked, legacy, done, *sweep, broken = fields
    first_order, high, swept, swept_all, allowed, digest = sweep
    link = None
    if broken is not None:
        log, position, entry_id, at, reason, message = broken
        when = None if at is None else datetime.fromisoformat(at)
        link = BrokenLink(Log(log), position, entry_id, when, Reason(reason), message)
    return Walked(
        last, prev, head_position, checked, legacy, done, link, first_order, high, swept,
        swept_all, allowed, digest,
    )  # fmt: skip


def _cursor_message(tenant_id: str, payload: bytes) -> bytes:
    return _CURSOR_LABEL + tenant_id.encode("utf-8", "surrogatepass") + b"\0" + payload


def seal_cursor(resume: Resume, keys: ChainKeys, tenant_id: str) -> str:
    """``resume`` as an opaque cursor, MACed with the tenant's id: only this deployment can
    make one, and only for that tenant."""
    payload = json.dumps(
        [_walked_fields(resume.history), _walked_fields(resume.audit)], separators=(",", ":")
    ).encode()
    mac = keys.sign(_cursor_message(tenant_id, payload))
    return f"{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{mac}"


def open_cursor(cursor: str, keys: ChainKeys, tenant_id: str) -> Resume | None:
    """The resume point a cursor sealed for this tenant carries; None for anything else (edited,
    forged, another tenant's, under a key since rotated away)."""
    if len(cursor) > _CURSOR_MAX or not cursor.isascii() or cursor.count(".") != 1:
        return None
    encoded, mac = cursor.split(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except ValueError:
        return None
    if keys.check(keys.key_id, _cursor_message(tenant_id, payload), mac) is not True:
        return None
    try:
        history, audit = json.loads(payload)
        return Resume(_walked(history), _walked(audit))
    except (ValueError, TypeError):  # MACed by us, so only a change of format gets here
        return None


async def tenants(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    """Every tenant that has history or audit entries. Text ids only: an entry whose tenant a
    database writer made another type is no tenant's (an object, which MongoDB hands back as a
    dict, could not even be put in a set), and a list's text elements, which ``distinct``
    hands back one by one, are tenants verified like any other."""
    found: set[str] = set()
    for collection in (HISTORY, AUDIT):
        found.update(
            tenant for tenant in await db[collection].distinct("tenantId") if type(tenant) is str
        )
    return sorted(found)


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
