"""auditIntegrity in pages: a tenant with more history than one call may verify is verified in
bounded calls, each continuing the chain from the cursor (``nextAfter``) the one before handed
out. The attacks: a local pymongo client (the embedded database asks no credentials) alters an
entry in an early or a late page, or removes an entry between two calls; a caller edits or
forges the cursor to skip entries or to have unread entries count as verified. Each is named."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.repository import HISTORY, SETTINGS
from tests.conftest import TEST_DATABASE, Gateway, open_gateway
from tests.documents import SELECT_EPIC
from tests.gql.test_audit_integrity import AUDIT_LOG
from tests.gql.test_tenants_query import directory_config
from tests.older_gateway import adopt_as_operator

UPDATE_EHR = """
mutation UpdateEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
VERIFY_PAGE = """
query VerifyPage($tenantId: ID!, $first: Int!, $after: String) {
  auditIntegrity(tenantId: $tenantId, first: $first, after: $after) {
    intact complete nextAfter checkedEntries legacyEntries
    firstBrokenLink { log version sequence reason message }
    history { intact checkedEntries head headHash }
    auditLog { intact checkedEntries head headHash }
  }
}
"""
VERIFY_ALL = """
query VerifyAll($tenantId: ID!) {
  auditIntegrity(tenantId: $tenantId) {
    intact complete nextAfter checkedEntries legacyEntries
    firstBrokenLink { log version sequence reason message }
    history { intact checkedEntries head headHash }
    auditLog { intact checkedEntries head headHash }
  }
}
"""
# Two whole pages in one operation ask for twice the work one call is bounded to.
TWO_FULL_PAGES = """
query TwoPages($tenantId: ID!) {
  one: auditIntegrity(tenantId: $tenantId) { complete }
  two: auditIntegrity(tenantId: $tenantId) { complete }
}
"""
TWO_HALF_PAGES = """
query TwoHalves($tenantId: ID!) {
  one: auditIntegrity(tenantId: $tenantId, first: 1000) { complete }
  two: auditIntegrity(tenantId: $tenantId, first: 1000) { complete }
}
"""
VERSIONS = 5  # 5 history entries and 5 audit entries: 10 entries, several pages of 3


@pytest.fixture
def intruder() -> Iterator[Any]:
    """A factory of the local process's own pymongo client on the gateway's database."""
    clients: list[MongoClient[dict[str, Any]]] = []

    def open_on(gateway: Gateway) -> Any:
        assert gateway.config.mongodb_url is not None
        client: MongoClient[dict[str, Any]] = MongoClient(gateway.config.mongodb_url)
        clients.append(client)
        return client[TEST_DATABASE]

    yield open_on
    for client in clients:
        client.close()


async def write_versions(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    for n in range(VERSIONS - 1):
        credentials = {"soapUsername": "soap-user", "soapPassword": f"pa55-{n}"}
        await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})


async def _as_adopted_with_older_entries(
    gateway: Gateway, intruder: Any, tenant_id: str, *, older: int
) -> None:
    """The tenant's one version as a gateway from before the chain left it, with ``older``
    audit entries before its own, then adopted as an operator does (`ehr-gateway
    chain-legacy-history`)."""
    db = intruder(gateway)
    db[HISTORY].update_many({"tenantId": tenant_id}, {"$unset": {"chain": "", "idempotency": ""}})
    db[AUDIT].update_many({"tenantId": tenant_id}, {"$unset": {"chain": "", "seq": ""}})
    db[SETTINGS].update_one({"_id": tenant_id}, {"$unset": {"seal": "", "directory": ""}})
    first = db[AUDIT].find_one({"tenantId": tenant_id})
    assert first is not None
    db[AUDIT].insert_many([
        {**first, "_id": f"{tenant_id}:before-{n}", "order": f"{first['order'][:-1]}!{n}"}
        for n in range(older)
    ])  # fmt: skip
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(gateway.config.mongodb_url)
    try:
        await adopt_as_operator(client[TEST_DATABASE], gateway.config.data_dir, tenant_id)
    finally:
        await client.close()


async def page(
    gateway: Gateway, tenant_id: str, after: str | None, first: int = 3
) -> dict[str, Any]:
    data = await gateway.execute(VERIFY_PAGE, tenantId=tenant_id, first=first, after=after)
    result: dict[str, Any] = data["auditIntegrity"]
    return result


async def walk(gateway: Gateway, tenant_id: str, first: int = 3) -> list[dict[str, Any]]:
    """Every page, following nextAfter, until complete."""
    pages = [await page(gateway, tenant_id, None, first)]
    while not pages[-1]["complete"]:
        assert len(pages) < 20, "the walk does not end"
        pages.append(await page(gateway, tenant_id, pages[-1]["nextAfter"], first))
    return pages


async def test_a_tenant_needing_several_pages_is_verified_intact_across_them(
    gateway: Gateway, tenant_id: str
) -> None:
    await write_versions(gateway, tenant_id)
    pages = await walk(gateway, tenant_id)

    assert len(pages) == 4  # 10 entries, 3 a page
    for earlier in pages[:-1]:
        # Unfinished: nothing broken so far, and nothing vouched for yet either.
        assert (earlier["complete"], earlier["intact"]) == (False, False)
        assert earlier["firstBrokenLink"] is None and earlier["nextAfter"]
    assert [p["checkedEntries"] for p in pages] == [3, 6, 9, 10]
    last = pages[-1]
    assert (last["complete"], last["intact"], last["nextAfter"]) == (True, True, None)
    # The same verdict one unbounded call gives: heads and their hashes agree.
    whole = (await gateway.execute(VERIFY_ALL, tenantId=tenant_id))["auditIntegrity"]
    assert (whole["complete"], whole["intact"], whole["nextAfter"]) == (True, True, None)
    assert last["history"] == whole["history"] and last["auditLog"] == whole["auditLog"]
    assert (last["history"]["head"], last["auditLog"]["head"]) == (VERSIONS, VERSIONS)


async def test_an_entry_altered_in_an_early_page_is_named(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    await write_versions(gateway, tenant_id)
    intruder(gateway)[HISTORY].update_one(
        {"tenantId": tenant_id, "version": 2}, {"$set": {"actor": "someone-else"}}
    )
    pages = await walk(gateway, tenant_id)

    last = pages[-1]
    assert (last["complete"], last["intact"]) == (True, False)
    broken = last["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 2, "ALTERED")
    assert (last["history"]["checkedEntries"], last["auditLog"]["intact"]) == (1, True)


async def test_an_entry_altered_in_a_late_page_is_named(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    await write_versions(gateway, tenant_id)
    intruder(gateway)[AUDIT].update_one(
        {"tenantId": tenant_id, "seq": VERSIONS}, {"$set": {"subject": "someone-else"}}
    )
    pages = await walk(gateway, tenant_id)

    assert len(pages) == 4 and all(p["firstBrokenLink"] is None for p in pages[:-1])
    broken = pages[-1]["firstBrokenLink"]
    assert (broken["log"], broken["sequence"], broken["reason"]) == ("AUDIT", VERSIONS, "ALTERED")
    assert pages[-1]["history"]["intact"] and not pages[-1]["intact"]


async def test_an_entry_removed_between_two_pages_is_found(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    await write_versions(gateway, tenant_id)
    first = await page(gateway, tenant_id, None)  # history versions 1 to 3
    assert first["history"]["head"] == 3
    # Not yet read: the next page finds the gap before version 5.
    intruder(gateway)[HISTORY].delete_one({"tenantId": tenant_id, "version": 4})
    second = await page(gateway, tenant_id, first["nextAfter"])
    broken = second["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 5, "MISSING")


async def test_the_entry_a_page_ended_at_removed_before_the_next_is_found(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    await write_versions(gateway, tenant_id)
    first = await page(gateway, tenant_id, None)
    # Already verified, then removed: the next page starts by reading it again.
    intruder(gateway)[HISTORY].delete_one({"tenantId": tenant_id, "version": 3})
    second = await page(gateway, tenant_id, first["nextAfter"])
    broken = second["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 3, "MISSING")
    assert "verified by an earlier page" in broken["message"]


def _edited(cursor: str, change: Any) -> str:
    """The cursor's payload changed by ``change``, its MAC kept."""
    encoded, mac = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    change(payload)
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return f"{base64.urlsafe_b64encode(raw).decode().rstrip('=')}.{mac}"


def _skip_history(payload: Any) -> None:
    payload[0][0] += 1  # resume a version later: the entry after it is never read


def _claim_done(payload: Any) -> None:
    payload[0][5] = payload[1][5] = True  # "both logs read to the end"


async def test_an_edited_or_forged_cursor_is_refused_naming_the_argument(
    gateway: Gateway, tenant_id: str
) -> None:
    await write_versions(gateway, tenant_id)
    await write_versions(gateway, f"{tenant_id}-other")
    cursor = (await page(gateway, tenant_id, None))["nextAfter"]
    elsewhere = (await page(gateway, f"{tenant_id}-other", None))["nextAfter"]
    forged = (
        base64.urlsafe_b64encode(b"[[5,null,null,5,0,true,null],[5,null,null,5,0,true,null]]")
        .decode()
        .rstrip("=")
        + "."
        + "0" * 64
    )
    for refused in (
        _edited(cursor, _skip_history),
        _edited(cursor, _claim_done),
        elsewhere,  # another tenant's walk
        forged,
        "garbage.0000",
        cursor + "0",
    ):
        body = await gateway.post(VERIFY_PAGE, tenantId=tenant_id, first=3, after=refused)
        assert body["data"] is None, refused
        [error] = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}
        assert refused not in error["message"]
    # The cursor as handed out still continues the walk.
    assert (await page(gateway, tenant_id, cursor))["checkedEntries"] == 6


async def test_one_operation_verifies_at_most_one_page(gateway: Gateway, tenant_id: str) -> None:
    await write_versions(gateway, tenant_id)
    body = await gateway.post(TWO_FULL_PAGES, tenantId=tenant_id)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["COST_LIMIT"]
    halves = await gateway.execute(TWO_HALF_PAGES, tenantId=tenant_id)
    assert halves == {"one": {"complete": True}, "two": {"complete": True}}


async def test_a_chained_history_stripped_and_edited_is_reported_unchained_not_intact(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    """Stripping every link of a history chained from version 1 (and editing a version) once
    made its entries count as entries from before the chain, and the tenant intact. Nothing
    trusts an unchained entry, so the walk names the first one."""
    await write_versions(gateway, tenant_id)
    history = intruder(gateway)[HISTORY]
    history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
    history.update_one(
        {"tenantId": tenant_id, "version": 2},
        {"$set": {"settings.providers.EPIC.ehr.soapUsername": "someone-else"}},
    )

    pages = await walk(gateway, tenant_id)

    last = pages[-1]
    assert (last["complete"], last["intact"], last["legacyEntries"]) == (True, False, 0)
    broken = last["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 1, "UNCHAINED")
    assert "chain-legacy-history" in broken["message"]


async def test_an_audit_entry_inserted_before_the_chains_first_entry_is_not_intact(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    """A database writer inserts an unchained audit entry (a rollback that never happened),
    dated (`at` and `order`) before the first entry of a log chained from its first entry.
    The log has no entries from before the chain, so the inserted one is not counted as one:
    auditLog shows it, and auditIntegrity answers the log not intact."""
    await write_versions(gateway, tenant_id)
    forged_at = datetime(2000, 1, 1, tzinfo=UTC)
    intruder(gateway)[AUDIT].insert_one({
        "_id": f"{tenant_id}:forged", "tenantId": tenant_id, "at": forged_at,
        "order": f"{int(forged_at.timestamp() * 1000):015d}:{tenant_id}:forged",
        "subject": "mallory", "roles": ["integrator"], "operation": "rollbackSettings",
        "outcome": "SAVED", "version": 2, "changes": [], "requestId": "forged-1",
    })  # fmt: skip

    verified = await gateway.execute(VERIFY_ALL, tenantId=tenant_id)
    shown = await gateway.execute(AUDIT_LOG, tenantId=tenant_id)

    assert any(e["subject"] == "mallory" for e in shown["auditLog"]["entries"])
    assert verified["auditIntegrity"]["complete"] is True
    assert verified["auditIntegrity"]["intact"] is False, verified["auditIntegrity"]


async def test_unchained_audit_entries_are_swept_page_by_page(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    """The audit log's entries without a sequence number are not in its chain's order: each page
    looks for them among the entries its chain reached in time. Those older than the chain's
    first entry, in a tenant adopted from before the chain, are counted as legacy, one newer is
    named; no call reads more than its page (`first`) of them."""
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    entries = intruder(gateway)[AUDIT]
    await _as_adopted_with_older_entries(gateway, intruder, tenant_id, older=3)
    async for replica in open_gateway(gateway.config):  # not the writer of the link replaced
        for n in range(VERSIONS - 1):
            credentials = {"soapUsername": "soap-user", "soapPassword": f"pa55-{n}"}
            await replica.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})

        pages = await walk(replica, tenant_id)

    read = [p["checkedEntries"] + p["legacyEntries"] for p in pages]
    # 13 entries (5 history, 4 audit from before the chain, 4 chained), 3 a page.
    assert read[-1] == 13 and all(0 < b - a <= 3 for a, b in zip([0, *read], read, strict=False))
    assert (pages[-1]["legacyEntries"], pages[-1]["complete"], pages[-1]["intact"]) == (
        4,
        True,
        True,
    )

    newest = entries.find_one({"tenantId": tenant_id, "seq": VERSIONS - 1})
    assert newest is not None
    forged = {k: v for k, v in newest.items() if k not in ("chain", "seq")}
    forged.update(_id=f"{tenant_id}:forged", subject="someone-else", order=newest["order"] + "z")
    entries.insert_one(forged)

    last = (await walk(gateway, tenant_id))[-1]
    assert (last["complete"], last["intact"]) == (True, False)
    assert last["firstBrokenLink"]["reason"] == "UNCHAINED"
    assert "newer than the chain's first entry" in last["firstBrokenLink"]["message"]


# The sort key a gateway gives every audit entry (a string of time and id), as a database
# writer may leave it: out, null, or of another type.
UNORDERED: dict[str, dict[str, Any]] = {
    "no order field": {},
    "an order that is null": {"order": None},
    "an order that is a number": {"order": 99},
}


@pytest.mark.parametrize("order", list(UNORDERED))
async def test_an_unchained_audit_entry_without_a_text_order_is_refused_and_named_unchained(
    database_url: str, tmp_path: Path, tenant_id: str, order: str
) -> None:
    """In a tenant a gateway chained from version 1, a database writer inserts an audit entry
    of the shape a gateway writes, without a sequence number or chain, and without the string
    sort key ``order`` (left out, null or a number). auditLog answers HISTORY_TAMPERED instead
    of showing it, and the sweep for unchained entries finds it however it is ordered:
    auditIntegrity names it UNCHAINED. A database of its own: the entry stays behind."""
    async for gateway in open_gateway(directory_config(database_url, tmp_path)):
        await write_versions(gateway, tenant_id)
        forged = {
            "_id": f"{tenant_id}:dforged",
            "tenantId": tenant_id,
            "at": datetime.now(UTC),
            "subject": "forged-by-a-database-writer",
            "roles": ["integrator"],
            "operation": "rotateSecrets",
            "outcome": "SAVED",
            "version": None,
            "changes": [],
            "requestId": "",
            **UNORDERED[order],
        }
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            await client[gateway.config.database][AUDIT].insert_one(forged)
        finally:
            await client.close()

        shown = await gateway.post(AUDIT_LOG, tenantId=tenant_id)
        verified = await gateway.execute(VERIFY_ALL, tenantId=tenant_id)

    codes = [error["extensions"]["code"] for error in shown.get("errors", [])]
    assert codes == ["HISTORY_TAMPERED"], shown  # the audit log does not show the forgery
    assert forged["subject"] not in str(shown)
    integrity = verified["auditIntegrity"]
    assert integrity["intact"] is False, f"forged audit entry not reported: {integrity}"
    assert integrity["firstBrokenLink"]["reason"] == "UNCHAINED", integrity
