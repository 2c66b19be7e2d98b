"""Adopting history entries written before the chain existed (``ehr-gateway
chain-legacy-history``), once, on an operator's word.

A gateway never accepts an unchained history entry: nothing in the database can tell an entry
from before the chain from one stripped of its chain, or one a database writer inserted. An
operator who has checked a tenant's history signs its unchained prefix into the chain: each
entry from the first version up is chained to the one before it, and the entries the gateway
chained since (the first of which named no predecessor) are linked on after them. Every chained
entry is verified before anything is signed, so nothing that does not verify is ever signed, and
a tenant whose history has a gap, or an unchained entry after chained ones, is left as it is.

Linking the later entries anew changes their hashes: run it while no gateway writes (a running
gateway remembers the hash of the newest entry it wrote, and its next write would not link).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ehr_gateway.storage.chain import GENESIS, HISTORY_LOG, entry_fault, history_link
from ehr_gateway.storage.repository import HISTORY
from ehr_gateway.storage.secrets import ChainKeys


@dataclass(frozen=True, slots=True)
class Adopted:
    """One tenant's outcome: how many unchained entries were signed and how many chained ones
    linked on after them; or why nothing was (``refused``)."""

    tenant_id: str
    signed: int = 0
    relinked: int = 0
    newest: int = 0
    refused: str | None = None


async def adopt_tenant(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str
) -> Adopted:
    """Sign ``tenant_id``'s unchained history prefix into its chain (see the module)."""
    history = db[HISTORY]
    rows = await history.find({"tenantId": tenant_id}, sort=[("version", ASCENDING)]).to_list()
    old_prev: str | None = None  # the hash the next chained entry names; None: not begun
    new_prev = GENESIS
    signed = relinked = 0
    links: list[tuple[dict[str, Any], dict[str, str]]] = []
    for expected, row in enumerate(rows, start=1):
        version = row.get("version")
        if version != expected:
            return Adopted(tenant_id, refused=f"version {expected} is missing or repeated")
        chain = row.get("chain")
        if not isinstance(chain, dict):
            if old_prev is not None:
                return Adopted(
                    tenant_id, refused=f"version {version} carries no chain link, though "
                    "versions before it do: stripped of it, not from before the chain",
                )  # fmt: skip
            signed += 1
        else:
            fault = entry_fault(HISTORY_LOG, row, keys)
            if fault is None and chain.get("prev") != (old_prev or GENESIS):
                fault = "BROKEN_LINK"
            if fault is not None:
                return Adopted(tenant_id, refused=f"version {version} does not verify ({fault})")
            old_prev = str(chain["hash"])
            if not signed:  # the chain began at the first version: nothing to adopt
                return Adopted(tenant_id)
            relinked += 1
        link = history_link(row, new_prev, keys)
        links.append((row, link))
        new_prev = link["hash"]
    for row, link in links:
        # Only over the entry as it was read: one changed meanwhile is left as it is now.
        chain = row.get("chain")
        was = {"chain": {"$exists": False}} if chain is None else {"chain.hash": chain["hash"]}
        updated = await history.update_one({"_id": row["_id"], **was}, {"$set": {"chain": link}})
        if not updated.matched_count:
            return Adopted(
                tenant_id, signed, relinked, len(rows),
                refused=f"version {row['version']} changed while it was being adopted; run the "
                "command again once no gateway writes",
            )  # fmt: skip
    return Adopted(tenant_id, signed, relinked, len(rows))


async def adopt_legacy_history(
    db: AsyncDatabase[dict[str, Any]], keys: ChainKeys, tenant_id: str | None
) -> list[Adopted]:
    """Adopt one tenant's entries from before the chain, or those of every tenant with any."""
    if tenant_id is not None:
        names = [tenant_id]
    else:
        names = sorted(
            str(name)
            for name in await db[HISTORY].distinct("tenantId", {"chain": {"$exists": False}})
        )
    return [await adopt_tenant(db, keys, name) for name in names]
