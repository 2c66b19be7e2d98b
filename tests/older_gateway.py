"""Values as a gateway from before today's rules stored them. Such a gateway sealed no settings
document and chained no history entry, and it stored the same settings in both: a test that
wants a value today's rules refuse puts it where that gateway would have, in the document and
in its version's history entry, with neither sealed nor chained. (Edited into the document
alone, the value is an edit by a database writer, which a load replaces with the history
entry's settings: tests/faults/test_edited_settings_document.py.)"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

SETTINGS = "tenant_settings"
HISTORY = "tenant_settings_history"


async def store_as_older_gateway(
    database_url: str, database: str, tenant_id: str, changes: dict[str, Any]
) -> None:
    """Set ``changes`` (dotted paths into the settings) in the tenant's current version."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        db = client[database]
        document = await db[SETTINGS].find_one_and_update(
            {"_id": tenant_id}, {"$set": changes, "$unset": {"seal": ""}}
        )
        assert document is not None, tenant_id
        history = db[HISTORY]
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await history.update_one(
            {"tenantId": tenant_id, "version": document["version"]},
            {"$set": {f"settings.{path}": value for path, value in changes.items()}},
        )
    finally:
        await client.close()
