"""The audit log: an append-only record of every stored version and of denied attempts (which
ones: resolvers.denials).

A version's entry is derived from its history entry and has a fixed id, so writing it again
(when a writer that died between the two is rolled forward) changes nothing. Entries are only
ever inserted; nothing here updates or deletes one (key rotation alone re-MACs them).

Each tenant's entries have a sequence number, unique per tenant, and are chained in that order
(storage.chain). A writer knows the tenant's last sequence number and hash from the entry it last
appended, so appending is one insert; when another request or replica appended in between, the
unique index refuses the insert and the writer reads the new head and tries again. So the chain
never forks, whatever the number of writers.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from ehr_gateway.storage.chain import GENESIS, audit_link
from ehr_gateway.storage.group_commit import GroupCommit, per_operation
from ehr_gateway.storage.locks import KeyedLocks
from ehr_gateway.storage.secrets import ChainKeys
from ehr_gateway.storage.tenant_filter import tenant_is

AUDIT = "audit_log"
# Appends that lost the race for a sequence number to another writer before one gives up.
_APPEND_ATTEMPTS = 32
# Tenants whose last sequence number and hash this process remembers.
_HEADS_MAX = 10_000


class AuditAppendError(PyMongoError):
    """Other writers kept taking the next sequence number; nothing was appended."""


class SequenceTaken(PyMongoError):
    """In a transaction, another writer took the sequence number this entry was given. The
    refused insert ends the transaction, so the whole write is tried again."""


@dataclass(frozen=True, slots=True)
class Head:
    """A tenant's last chained audit entry: its sequence number and hash."""

    tenant_id: str
    sequence: int
    hash: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    tenant_id: str
    at: datetime
    subject: str
    roles: tuple[str, ...]
    operation: str
    outcome: str  # SAVED or DENIED
    version: int | None
    changes: tuple[Mapping[str, Any], ...]  # {path, before, after}, secrets redacted
    request_id: str
    missing_permission: str | None


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=row["_id"],
        tenant_id=row["tenantId"],
        at=row["at"],
        subject=row["subject"],
        roles=tuple(row.get("roles", ())),
        operation=row.get("operation", ""),
        outcome=row["outcome"],
        version=row.get("version"),
        changes=tuple(row.get("changes", ())),
        request_id=row.get("requestId", ""),
        missing_permission=row.get("permission"),
    )


def _order(at: datetime, entry_id: str) -> str:
    """A sort key: time (ms), then id. A string, so every server orders it the same way."""
    return f"{int(at.timestamp() * 1000):015d}:{entry_id}"


def version_row(history: Mapping[str, Any]) -> dict[str, Any]:
    """The audit entry of a stored version, from its history entry, before it is chained."""
    audit = history.get("audit") or {}
    entry_id = f"{history['tenantId']}:v{history['version']:012d}"
    return {
        "_id": entry_id,
        "order": _order(history["changedAt"], entry_id),
        "tenantId": history["tenantId"],
        "at": history["changedAt"],
        "subject": history["actor"],
        "roles": audit.get("roles", []),
        "operation": audit.get("operation", ""),
        "outcome": "SAVED",
        "version": history["version"],
        "changes": audit.get("changes", []),
        "requestId": audit.get("requestId", ""),
    }


def chained_entry(row: Mapping[str, Any], head: Head, keys: ChainKeys) -> dict[str, Any]:
    """``row`` as the entry after ``head`` in its tenant's log: its sequence number and link.
    No database round trip: the append makes its entry with it, and so can anything that must
    store entries exactly as the append would."""
    chained = {**row, "seq": head.sequence + 1}
    chained["chain"] = audit_link(chained, head.hash, keys)
    return chained


class AuditLog:
    def __init__(self, database: AsyncDatabase[dict[str, Any]], keys: ChainKeys) -> None:
        self._entries = database[AUDIT]
        self._keys = keys
        # Outside transactions, the entries of concurrent writes go in one command each time.
        self._inserts = GroupCommit(self._insert)
        # Appends to one tenant from this process take turns, so they do not race each other
        # for a sequence number (other processes' appends still may: the index settles those).
        self._turns = KeyedLocks()
        self._heads: OrderedDict[str, Head] = OrderedDict()

    async def prepare(self) -> None:
        await self._entries.create_index(
            [("tenantId", 1), ("order", DESCENDING)], name="tenant_order"
        )
        # Entries from before the chain have no sequence number: they are left out of the index
        # (a partial index), so they never collide with the chain's.
        await self._entries.create_index(
            [("tenantId", 1), ("seq", DESCENDING)],
            unique=True,
            name="tenant_seq_unique",
            partialFilterExpression={"seq": {"$exists": True}},
        )

    def remember(self, head: Head) -> None:
        """``head`` is committed: the tenant's next append follows it."""
        self._heads[head.tenant_id] = head
        self._heads.move_to_end(head.tenant_id)
        if len(self._heads) > _HEADS_MAX:
            self._heads.popitem(last=False)

    def forget(self, tenant_id: str) -> None:
        """What this process knew of the tenant's head may not have been committed."""
        self._heads.pop(tenant_id, None)

    async def _head(self, tenant_id: str, session: AsyncClientSession | None) -> Head:
        known = self._heads.get(tenant_id)
        if known is not None:
            return known
        last = await self._entries.find_one(
            {"tenantId": tenant_is(tenant_id), "seq": {"$exists": True}},
            sort=[("seq", DESCENDING)],
            projection={"seq": 1, "chain": 1},
            session=session,
        )
        if last is None:
            return Head(tenant_id, 0, GENESIS)
        return Head(tenant_id, int(last["seq"]), str((last.get("chain") or {}).get("hash", "")))

    async def _append(
        self, row: dict[str, Any], session: AsyncClientSession | None = None
    ) -> Head | None:
        """Insert ``row`` as the tenant's next entry, chained to the one before. Returns the new
        head, which in a transaction the caller remembers once it commits (outside one it is
        remembered here); None if an entry with the row's id is already stored."""
        tenant_id = row["tenantId"]
        async with self._turns.hold(tenant_id):
            for _ in range(_APPEND_ATTEMPTS):
                head = await self._head(tenant_id, session)
                chained = chained_entry(row, head, self._keys)
                try:
                    if session is None:
                        await self._inserts.run(chained)
                    else:
                        await self._entries.insert_one(chained, session=session)
                except DuplicateKeyError:
                    self.forget(tenant_id)
                    if session is not None:
                        raise SequenceTaken(f"audit sequence of tenant {tenant_id}") from None
                    # Another writer took the sequence number, or stored this very entry (it
                    # rolled this version forward): which one, the entry's id tells.
                    stored = await self._entries.find_one(
                        {"_id": row["_id"]}, projection={"_id": 1}
                    )
                    if stored is not None:
                        return None
                    continue
                new_head = Head(tenant_id, head.sequence + 1, chained["chain"]["hash"])
                if session is None:
                    self.remember(new_head)
                return new_head
        raise AuditAppendError(f"could not append to the audit log of tenant {tenant_id}")

    async def record_version(
        self, history: Mapping[str, Any], session: AsyncClientSession | None = None
    ) -> Head | None:
        """The entry for a stored version, from its history entry (idempotent). In a
        transaction, returns the head to remember once it commits."""
        return await self._append(version_row(history), session)

    async def _insert(self, rows: list[dict[str, Any]]) -> list[PyMongoError | None]:
        try:
            await self._entries.insert_many(rows, ordered=False)
        except BulkWriteError as error:
            # A duplicate key is the writer's to resolve: this entry is stored already, or
            # another writer took its sequence number.
            return per_operation(error, len(rows))
        return [None] * len(rows)

    async def record_denial(
        self,
        *,
        tenant_id: str,
        at: datetime,
        subject: str,
        roles: list[str],
        operation: str,
        permission: str,
        request_id: str,
    ) -> None:
        entry_id = f"{tenant_id}:d{uuid.uuid4().hex}"
        await self._append(
            {
                "_id": entry_id,
                "order": _order(at, entry_id),
                "tenantId": tenant_id,
                "at": at,
                "subject": subject,
                "roles": roles,
                "operation": operation,
                "outcome": "DENIED",
                "version": None,
                "changes": [],
                "requestId": request_id,
                "permission": permission,
            }
        )

    async def page(
        self, tenant_id: str, limit: int, before: str | None
    ) -> tuple[list[AuditEntry], bool]:
        """Entries newest first, ``limit`` of them, older than the entry ``before``; and whether
        more follow."""
        query: dict[str, Any] = {"tenantId": tenant_is(tenant_id)}
        if before is not None:
            anchor = await self._entries.find_one({"_id": before, "tenantId": tenant_is(tenant_id)})
            if anchor is None:
                return [], False
            query["order"] = {"$lt": anchor["order"]}
        cursor = self._entries.find(query, sort=[("order", DESCENDING)], limit=limit + 1)
        rows = [_entry(row) async for row in cursor]
        return rows[:limit], len(rows) > limit
