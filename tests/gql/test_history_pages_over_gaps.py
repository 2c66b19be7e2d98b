"""settingsHistory and auditLog over versions and entries removed from the database (a gap in
the versions). The audit log pages what is stored, newest first, a page at a time, with no entry
twice and none skipped, and a page does not end early because an entry is missing. History
shows only versions it can verify: one whose predecessor is gone is refused, naming it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, open_gateway
from tests.documents import SELECT_EPIC, SELECT_PROVIDER, SETTINGS_HISTORY, UPDATE_EHR
from tests.gql.test_tenants_query import directory_config

AUDIT_LOG = """
query Audit($tenantId: ID!, $first: Int, $before: String) {
  auditLog(tenantId: $tenantId, first: $first, before: $before) {
    entries { id outcome version }
    hasMore nextBefore
  }
}
"""
VERSIONS = 9
REMOVED = [3, 4, 5, 7]


async def _stored_with_gaps(database_url: str, gateway: Gateway, tenant_id: str) -> None:
    """VERSIONS versions and a refused attempt, then versions REMOVED taken out of history
    and the audit log by a database writer."""
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    for practice in range(2, VERSIONS + 1):
        await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id, input={"athena": {"practiceId": str(practice)}}
        )
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    refused = await viewer.post(
        UPDATE_EHR, tenantId=tenant_id, input={"athena": {"practiceId": "refused"}}
    )
    assert refused["errors"]
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        database = writer[TEST_DATABASE]
        removed = {"tenantId": tenant_id, "version": {"$in": REMOVED}}
        assert (await database["tenant_settings_history"].delete_many(removed)).deleted_count == 4
        assert (await database["audit_log"].delete_many(removed)).deleted_count == 4
    finally:
        await writer.close()


async def _history_pages(gateway: Gateway, tenant_id: str, first: int) -> list[list[int]]:
    pages: list[list[int]] = []
    before = None
    while True:
        data = await gateway.execute(
            SETTINGS_HISTORY, tenantId=tenant_id, first=first, before=before
        )
        page = data["settingsHistory"]
        pages.append([version["version"] for version in page["versions"]])
        if not page["hasMore"]:
            assert page["nextBefore"] is None
            return pages
        assert page["nextBefore"] == pages[-1][-1]
        before = page["nextBefore"]


async def _audit_pages(gateway: Gateway, tenant_id: str, first: int) -> list[list[Any]]:
    pages: list[list[Any]] = []
    before = None
    while True:
        data = await gateway.execute(AUDIT_LOG, tenantId=tenant_id, first=first, before=before)
        page = data["auditLog"]
        pages.append([entry["version"] or entry["outcome"] for entry in page["entries"]])
        if not page["hasMore"]:
            assert page["nextBefore"] is None
            return pages
        assert page["nextBefore"] == page["entries"][-1]["id"]
        before = page["nextBefore"]


async def test_a_history_page_after_a_removed_version_is_refused_naming_it(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await _stored_with_gaps(database_url, gateway, tenant_id)
    # Version 8 follows version 7, which is gone, and version 6 follows version 5: what they
    # follow cannot be verified, so they are not shown (as they would not be rolled back to),
    # and the refusal names the oldest such version on the page.
    for first, named in ((2, 8), (3, 6), (100, 6)):
        answer = await gateway.post(SETTINGS_HISTORY, tenantId=tenant_id, first=first)
        assert answer["data"] is None, answer
        [error] = answer["errors"]
        assert error["extensions"]["code"] == "HISTORY_TAMPERED", error
        assert f"at version {named}:" in error["message"], error
    # Versions older than every gap still page, and a cursor naming a removed version still
    # means "older than it".
    data = await gateway.execute(SETTINGS_HISTORY, tenantId=tenant_id, first=1, before=3)
    page = data["settingsHistory"]
    assert [version["version"] for version in page["versions"]] == [2]
    assert page["hasMore"] and page["nextBefore"] == 2
    data = await gateway.execute(SETTINGS_HISTORY, tenantId=tenant_id, first=2, before=5)
    page = data["settingsHistory"]
    assert [version["version"] for version in page["versions"]] == [2, 1]
    assert not page["hasMore"]


async def test_audit_pages_hold_full_pages_across_removed_entries(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await _stored_with_gaps(database_url, gateway, tenant_id)
    assert await _audit_pages(gateway, tenant_id, 2) == [["DENIED", 9], [8, 6], [2, 1]]
    assert await _audit_pages(gateway, tenant_id, 4) == [["DENIED", 9, 8, 6], [2, 1]]
    assert await _audit_pages(gateway, tenant_id, 100) == [["DENIED", 9, 8, 6, 2, 1]]
    # An id that names no stored entry (a removed one) has no page after it.
    removed_id = f"{tenant_id}:v{7:012d}"
    data = await gateway.execute(AUDIT_LOG, tenantId=tenant_id, first=2, before=removed_id)
    assert data["auditLog"] == {"entries": [], "hasMore": False, "nextBefore": None}


async def test_the_audit_log_paged_before_an_entry_without_an_order_answers_history_tampered(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """A database writer inserts an audit entry without the ``order`` sort key; a viewer of the
    audit log who pages from it (``before`` its id) is not answered an internal error. A
    database of its own: the entry stays behind."""
    async for gateway in open_gateway(directory_config(database_url, tmp_path)):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            await client[gateway.config.database]["audit_log"].insert_one(
                {
                    "_id": f"{tenant_id}:dforged",
                    "tenantId": tenant_id,
                    "at": datetime.now(UTC),
                    "subject": "forged-by-a-database-writer",
                    "roles": [],
                    "operation": "rotateSecrets",
                    "outcome": "SAVED",
                    "version": None,
                    "changes": [],
                    "requestId": "",
                }
            )
        finally:
            await client.close()

        paged = await gateway.post(
            AUDIT_LOG, tenantId=tenant_id, first=1, before=f"{tenant_id}:dforged"
        )

    codes = [error["extensions"]["code"] for error in paged.get("errors", [])]
    assert codes == ["HISTORY_TAMPERED"], paged
