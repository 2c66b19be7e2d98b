"""Values as a gateway from before today's rules stored them. Such a gateway sealed no settings
document and chained no history entry, and it stored the same settings in both: a test that
wants a value today's rules refuse puts it where that gateway would have, in the document and
in its version's history entry, with neither sealed nor chained (nor its audit log: no
sequence numbers, no chain). (Edited into the document
alone, the value is an edit by a database writer, which a load replaces with the history
entry's settings: tests/faults/test_edited_settings_document.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ehr_gateway.storage.legacy import adopt_legacy_history
from ehr_gateway.storage.migrations import seal_stored_secrets
from ehr_gateway.storage.secrets import SecretBox

SETTINGS = "tenant_settings"
HISTORY = "tenant_settings_history"
AUDIT = "audit_log"


async def as_older_gateway_left_it(db: AsyncDatabase[dict[str, Any]], tenant_id: str) -> None:
    """The tenant's history, audit log and document as a gateway from before the chain and
    the seal stored them: nothing chained, numbered or sealed, and none of what came after the
    chain (idempotency keys, the tenant directory's row)."""
    await db[HISTORY].update_many(
        {"tenantId": tenant_id}, {"$unset": {"chain": "", "idempotency": ""}}
    )
    await db[AUDIT].update_many({"tenantId": tenant_id}, {"$unset": {"chain": "", "seq": ""}})
    await db[SETTINGS].update_one({"_id": tenant_id}, {"$unset": {"seal": "", "directory": ""}})


async def store_as_older_gateway(
    database_url: str, database: str, tenant_id: str, changes: dict[str, Any], *, data_dir: Path
) -> None:
    """Set ``changes`` (dotted paths into the settings) in the tenant's current version, then
    adopt the history as an operator upgrading from such a gateway does (`ehr-gateway
    chain-legacy-history`, with the key in ``data_dir``): unadopted, no unchained entry is
    trusted."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        db = client[database]
        document = await db[SETTINGS].find_one_and_update({"_id": tenant_id}, {"$set": changes})
        assert document is not None, tenant_id
        await as_older_gateway_left_it(db, tenant_id)
        await db[HISTORY].update_one(
            {"tenantId": tenant_id, "version": document["version"]},
            {"$set": {f"settings.{path}": value for path, value in changes.items()}},
        )
        await adopt_as_operator(db, data_dir, tenant_id)
    finally:
        await client.close()


async def adopt_as_operator(
    db: AsyncDatabase[dict[str, Any]], data_dir: Path, tenant_id: str
) -> None:
    """What `ehr-gateway chain-legacy-history --tenant` does, with the key in ``data_dir``:
    secrets sealed (and fingerprints bound) first, so the entries are signed as stored today,
    then the tenant's unchained history signed into the chain."""
    box = SecretBox.from_data_dir(data_dir)
    await seal_stored_secrets(db, box)
    adopted = await adopt_legacy_history(db, box.chain, tenant_id)
    assert adopted.refused is None, adopted
