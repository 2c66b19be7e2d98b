"""Adopting history entries written before the chain existed (``ehr-gateway
chain-legacy-history --tenant T``), once, on an operator's word, one known tenant at a time.

A gateway never accepts an unchained history entry: nothing in the database can tell an entry
from before the chain from one stripped of its chain, or one a database writer inserted. An
operator who has checked a tenant's history signs it into the chain: each entry from the first
version up is chained to the one before it.

Only a tenant that shows no trace of ever having been chained is adopted: a writer who strips a
chained history of its links and edits a version must not get the edit signed. So a tenant is
refused, changing nothing, on any positive evidence of the chain, that is on anything a
gateway with the chain writes and one from before it never did: a history entry with a
``chain`` field at all (whatever it holds) or an ``idempotency`` field (idempotency keys came
after the chain), an audit-log entry with a sequence number or a ``chain`` field, a settings
document with a ``seal`` field or a ``directory`` row (the tenant directory came after the
chain, and a gateway writes no row for a tenant whose history it cannot verify, so not for one
waiting to be adopted). A writer who removes every such trace (and every audit entry of the
tenant) is not detectable here: that is why the operator names each tenant, having checked its
history against what it knows (a backup, its records).

Adoption also records, in the MACed content of version 1's entry (``adopted``), how many audit
entries the tenant had from before the chain and a hash over them (``legacy_audit_digest``):
those entries carry no MAC of their own, and this is what lets ``auditIntegrity`` tell them from
unchained entries a database writer inserts later (storage.integrity). A tenant whose version 1
was chained by a gateway, not adopted, has no audit entry from before the chain at all.
A tenant whose history has a gap, or whose settings are at a version history lacks, is refused
too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.chain import GENESIS, history_link, legacy_audit_digest
from ehr_gateway.storage.directory import DIRECTORY
from ehr_gateway.storage.repair import security_logger
from ehr_gateway.storage.repository import HISTORY, SEAL, SETTINGS
from ehr_gateway.storage.secrets import ChainKeys
from ehr_gateway.storage.tenant_filter import TEXT_TENANTS, first_text_tenant, tenant_is

# The field of version 1's entry in which adoption records the tenant's audit entries from
# before the chain (how many, and their hash): inside the entry's hash, so under its MAC.
ADOPTED = "adopted"


@dataclass(frozen=True, slots=True)
class Adopted:
    """One tenant's outcome: how many unchained entries were signed; or why nothing was
    (``refused``)."""

    tenant_id: str
    signed: int = 0
    refused: str | None = None


async def chained_evidence(
    db: AsyncDatabase[dict[str, Any]], tenant_id: str, rows: list[dict[str, Any]]
) -> str | None:
    """What shows that ``tenant_id`` (whose history is ``rows``) was written by a gateway with
    the chain; None when nothing does. Fields are looked for in the documents as read, not by
    query: the embedded server matches a null field as absent, and a null is a trace too."""
    for row in rows:
        if "chain" in row:
            return f"history version {row.get('version')} carries a chain field"
        if ADOPTED in row:
            return f"history version {row.get('version')} carries an adoption record"
    async for entry in db[AUDIT].find({"tenantId": tenant_is(tenant_id)}):
        for field, what in (("seq", "a sequence number"), ("chain", "a chain field")):
            if field in entry:
                return f"its audit log has an entry with {what} (entry {entry['_id']})"
    document = await db[SETTINGS].find_one({"_id": tenant_id})
    if document is not None and SEAL in document:
        return f"its settings document (version {document.get('version')}) carries a seal"
    if document is not None and DIRECTORY in document:
        return (
            f"its settings document (version {document.get('version')}) carries a tenant "
            "directory row"
        )
    for row in rows:
        if "idempotency" in row:
            return f"history version {row.get('version')} carries an idempotency key"
    return None


async def adopt_tenant(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> Adopted:
    """Sign ``tenant_id``'s history, all from before the chain, into its chain (see the
    module)."""
    history = db[HISTORY]
    rows = await history.find(
        {"tenantId": tenant_is(tenant_id)}, sort=[("version", ASCENDING)]
    ).to_list()
    if all(isinstance(row.get("chain"), dict) for row in rows):
        return Adopted(tenant_id)  # no history, or all of it chained: nothing to adopt
    evidence = await chained_evidence(db, tenant_id, rows)
    if evidence is not None:
        return Adopted(
            tenant_id, refused=f"{evidence}: a gateway with the history chain wrote this tenant, "
            "so its unchained entries were stripped of their links, not written before the "
            "chain; restore its history from a backup",
        )  # fmt: skip
    for expected, row in enumerate(rows, start=1):
        if row.get("version") != expected:
            return Adopted(tenant_id, refused=f"version {expected} is missing or repeated")
    # Every audit entry of the tenant is from before the chain (chained_evidence found none
    # numbered or chained): what version 1's entry records of them, under its MAC.
    legacy = (
        await db[AUDIT]
        .find({"tenantId": tenant_is(tenant_id)}, sort=[("order", ASCENDING), ("_id", ASCENDING)])
        .to_list()
    )
    digest = GENESIS
    for entry in legacy:
        digest = legacy_audit_digest(digest, entry)
    rows[0][ADOPTED] = {"legacyAuditEntries": len(legacy), "legacyAuditDigest": digest}
    prev = GENESIS
    links: list[tuple[dict[str, Any], dict[str, str]]] = []
    for row in rows:
        link = history_link(row, prev, keys)
        links.append((row, link))
        prev = link["hash"]
    document = await db[SETTINGS].find_one({"_id": tenant_id}, projection={"version": 1})
    current = (document or {}).get("version") or 0
    if not isinstance(current, int) or isinstance(current, bool):
        return Adopted(
            tenant_id, refused=f"its settings document's version is {type(current).__name__}, "
            "a type no gateway writes; restore it from a backup",
        )  # fmt: skip
    if current > len(rows):
        return Adopted(
            tenant_id, refused=f"its settings are at version {current}, its history ends at "
            f"version {len(rows)}",
        )  # fmt: skip
    for row, link in links:
        # Only over the entry as it was read: one changed meanwhile is left as it is now.
        fields: dict[str, Any] = {"chain": link}
        if ADOPTED in row:
            fields[ADOPTED] = row[ADOPTED]
        updated = await history.update_one(
            {"_id": row["_id"], "chain": {"$exists": False}}, {"$set": fields}
        )
        if not updated.matched_count:
            return Adopted(
                tenant_id, signed=int(row["version"]) - 1,
                refused=f"version {row['version']} changed while it was being adopted; run the "
                "command again once no gateway writes",
            )  # fmt: skip
    return Adopted(tenant_id, len(rows))


async def adopt_legacy_history(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> Adopted:
    """Adopt one tenant's history from before the chain (see the module)."""
    return await adopt_tenant(db, keys, tenant_id)


# Finds the history entries without a chain link (the index keeps a missing field as null):
# which tenants have any is a seek per tenant, not a read of every entry.
UNCHAINED_INDEX = "unchained_by_tenant"
_UNCHAINED = {"chain.keyId": None}
_BY_UNCHAINED = [("chain.keyId", ASCENDING), ("tenantId", ASCENDING)]


async def create_index(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db[HISTORY].create_index(_BY_UNCHAINED, name=UNCHAINED_INDEX)


async def unadopted_tenants(db: AsyncDatabase[dict[str, Any]], most: int) -> list[str]:
    """Up to ``most`` tenants, in id order, with a history entry that carries no chain link:
    from before the chain and not adopted yet, or stripped of it. One index seek each."""
    found: list[str] = []
    while len(found) < most:
        # Text tenants only: an entry whose tenant a database writer made null, a number or a
        # list, which sorts before text, is no tenant to name, and must hide none.
        after = {"$gt": found[-1]} if found else TEXT_TENANTS
        row = await first_text_tenant(db[HISTORY], {**_UNCHAINED, "tenantId": after}, _BY_UNCHAINED)
        if row is None:
            break
        found.append(row["tenantId"])
    return found


_NAMED = 5  # tenants a start-up warning names
_COUNTED = 100  # tenants it counts at most


async def warn_of_unadopted_history(db: AsyncDatabase[dict[str, Any]]) -> list[str]:
    """At start-up: one warning naming the tenants (how many, and the first few) whose history
    has entries without a chain link, which every read, rollback and write of theirs refuses
    until an operator adopts (or restores) it. Returns the tenants counted."""
    await create_index(db)
    tenants = await unadopted_tenants(db, _COUNTED + 1)
    if tenants:
        count = str(len(tenants)) if len(tenants) <= _COUNTED else f"more than {_COUNTED}"
        named = ", ".join(tenants[:_NAMED]) + (", ..." if len(tenants) > _NAMED else "")
        security_logger.warning(
            "%s tenants have history entries without a chain link (%s): their reads and writes "
            "answer HISTORY_TAMPERED until an operator who has checked each runs `ehr-gateway "
            "chain-legacy-history --tenant` (history from before the chain) or restores it "
            "from a backup (stripped of its chain); see auditIntegrity",
            count, named,
        )  # fmt: skip
    return tenants[:_COUNTED]
