"""The audit log: an append-only record of every stored version and every denied attempt.

A version's entry is derived from its history entry and has a fixed id, so writing it again
(when a writer that died between the two is rolled forward) changes nothing. Entries are only
ever inserted; nothing here updates or deletes one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from storage.group_commit import GroupCommit, per_operation

AUDIT = "audit_log"


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


class AuditLog:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._entries = database[AUDIT]
        # Outside transactions, the entries of concurrent writes go in one command each time.
        self._inserts = GroupCommit(self._insert)

    async def prepare(self) -> None:
        await self._entries.create_index(
            [("tenantId", 1), ("order", DESCENDING)], name="tenant_order"
        )

    async def record_version(
        self, history: Mapping[str, Any], session: AsyncClientSession | None = None
    ) -> None:
        """The entry for a stored version, from its history entry (idempotent)."""
        audit = history.get("audit") or {}
        entry_id = f"{history['tenantId']}:v{history['version']:012d}"
        row = {
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
        if session is None:
            await self._inserts.run(row)
            return
        with suppress(DuplicateKeyError):
            await self._entries.insert_one(row, session=session)

    async def _insert(self, rows: list[dict[str, Any]]) -> list[PyMongoError | None]:
        try:
            await self._entries.insert_many(rows, ordered=False)
        except BulkWriteError as error:
            # A duplicate key: the entry is already stored (a writer rolled this version
            # forward), and it is the same entry.
            return [
                None if isinstance(failed, DuplicateKeyError) else failed
                for failed in per_operation(error, len(rows))
            ]
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
        await self._entries.insert_one(
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
        query: dict[str, Any] = {"tenantId": tenant_id}
        if before is not None:
            anchor = await self._entries.find_one({"_id": before, "tenantId": tenant_id})
            if anchor is None:
                return [], False
            query["order"] = {"$lt": anchor["order"]}
        cursor = self._entries.find(query, sort=[("order", DESCENDING)], limit=limit + 1)
        rows = [_entry(row) async for row in cursor]
        return rows[:limit], len(rows) > limit
