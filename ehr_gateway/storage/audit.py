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

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from ehr_gateway.storage.chain import GENESIS, audit_link
from ehr_gateway.storage.group_commit import GroupCommit, per_operation
from ehr_gateway.storage.locks import KeyedLocks
from ehr_gateway.storage.repair import security_logger
from ehr_gateway.storage.secrets import ChainKeys
from ehr_gateway.storage.stored_numbers import is_stored_number
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


class AuditEntryTampered(Exception):
    """An audit entry holds a field of a type no gateway writes: a database writer's. It is not
    shown as if it were an entry; ``auditIntegrity`` names it as a broken link."""

    def __init__(self, tenant_id: str, entry_id: str) -> None:
        super().__init__(f"tenant {tenant_id}: audit entry {entry_id} is malformed")
        self.tenant_id = tenant_id
        self.entry_id = entry_id

    @property
    def client_message(self) -> str:
        return (
            f"an audit entry of tenant {self.tenant_id} holds fields of types no gateway "
            "writes: it was changed in the database. auditIntegrity names the broken link"
        )


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _well_formed(row: Mapping[str, Any]) -> bool:
    """Whether every field shown holds a value of the type a gateway stores there."""
    version = row.get("version")
    changes = row.get("changes", [])
    return (
        _is_text(row.get("_id"))
        and _is_text(row.get("tenantId"))
        and _is_text(row.get("order"))
        and isinstance(row.get("at"), datetime)
        and _is_text(row.get("subject"))
        and _is_text(row.get("outcome"))
        and _is_text(row.get("operation", ""))
        and _is_text(row.get("requestId", ""))
        and (version is None or is_stored_number(version))
        and (row.get("permission") is None or _is_text(row.get("permission")))
    ) and (
        isinstance(row.get("roles", []), list)
        and all(_is_text(role) for role in row.get("roles", []))
        and isinstance(changes, list)
        and all(isinstance(change, dict) and _is_text(change.get("path")) for change in changes)
    )


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    if not _well_formed(row):
        tenant_id, entry_id = str(row.get("tenantId")), str(row.get("_id"))
        security_logger.warning(
            "tenant %s: audit entry %s holds fields of types no gateway writes; not shown",
            tenant_id, entry_id,
        )  # fmt: skip
        raise AuditEntryTampered(tenant_id, entry_id)
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


def _head_of(tenant_id: str, row: Mapping[str, Any]) -> Head | None:
    """The head an entry makes, if its sequence number is a number. A link of another type is
    no link: the next entry follows "" and the walk names this one UNCHAINED, as it does an
    entry stripped of its link."""
    sequence, chain = row.get("seq"), row.get("chain")
    if not is_stored_number(sequence):
        return None
    return Head(tenant_id, sequence, str(chain.get("hash", "")) if isinstance(chain, dict) else "")


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
        query = {"tenantId": tenant_is(tenant_id), "seq": {"$exists": True}}
        newest = [("seq", DESCENDING)]
        head = {"seq": 1, "chain": 1}
        last = await self._entries.find_one(query, sort=newest, projection=head, session=session)
        if last is None:
            return Head(tenant_id, 0, GENESIS)
        found = _head_of(tenant_id, last)
        if found is not None:
            return found
        # A sequence number of another type, which only a database writer stores (the log's
        # walk names its entry), and which a server may order above every number (a range on
        # a number does not leave it out on every server): the head is the newest entry with
        # a number. Read only after such a find, so never on an untouched log.
        async for row in self._entries.find(query, sort=newest, projection=head, session=session):
            found = _head_of(tenant_id, row)
            if found is not None:
                return found
        return Head(tenant_id, 0, GENESIS)

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
            anchor = await self._entries.find_one(
                {"_id": before, "tenantId": tenant_is(tenant_id)}, projection={"order": 1}
            )
            if anchor is None:
                return [], False
            order = anchor.get("order")
            if not _is_text(order):
                security_logger.warning(
                    "tenant %s: audit entry %s has no text order; not paged from",
                    tenant_id, before,
                )  # fmt: skip
                raise AuditEntryTampered(tenant_id, str(before))
            query["order"] = {"$lt": order}
        cursor = self._entries.find(query, sort=[("order", DESCENDING)], limit=limit + 1)
        rows = [_entry(row) async for row in cursor]
        if before is not None and len(rows) <= limit:
            # The range on text leaves out entries whose order a database writer removed or
            # retyped, which sort below every text one (a first page long enough holds them
            # and is refused): the last page of a walk is refused as well if one is there.
            # One find, on the last page alone.
            await self._refuse_unordered(tenant_id)
        return rows[:limit], len(rows) > limit

    async def _refuse_unordered(self, tenant_id: str) -> None:
        """Refuse (``AuditEntryTampered``) if the tenant's lowest entry by ``order`` has no text
        order (left out, null, a number: those sort below all text). A type that sorts above
        text on MongoDB (an object, a date) is the first entry of every first page, refused
        there."""
        end = await self._entries.find_one(
            {"tenantId": tenant_is(tenant_id)}, sort=[("order", ASCENDING)],
            projection={"order": 1},
        )  # fmt: skip
        if end is not None and not _is_text(end.get("order")):
            entry_id = str(end.get("_id"))
            security_logger.warning(
                "tenant %s: audit entry %s has no text order; not shown", tenant_id, entry_id
            )
            raise AuditEntryTampered(tenant_id, entry_id)
