"""A database writer (no key) inserts an unchained history entry two versions past the tenant's
newest: the version before it is missing, so ``_verify`` takes it for an entry "from before the
chain existed" and ``verified_version`` finds no later entry naming a hash. The forged settings
must never be signed as a new version by ``rollbackSettings``, nor served by a read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway

SELECT_EPIC = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
SET_FHIR = """
mutation SetFhir($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""
ROLLBACK = """
mutation Rollback($tenantId: ID!, $to: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $to) {
    __typename
    ... on SettingsSaved { settings { version fhir { ... on EpicFhirSettings { urlPrefix } } } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
READ = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { urlPrefix } }
  }
}
"""
# Valid under today's rules: the check of today's rules does not stop it, only the chain can.
FORGED_PREFIX = "/FHIR/FORGED"
# The change feed and the repair task act within seconds; the bound only ends a broken run.
WATCH_S = 15


async def _configure(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
    await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
    await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R5")  # v3


async def _forge_past_a_gap(database_url: str, tenant_id: str) -> int:
    """Insert an unchained entry at the newest version + 2, as a writer without the key."""
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        latest = await history.find_one({"tenantId": tenant_id}, sort=[("version", -1)])
        assert latest is not None
        version = int(latest["version"]) + 2
        now = datetime.now(UTC).replace(microsecond=0)
        settings = dict(latest["settings"], version=version, updatedAt=now)
        providers = dict(settings["providers"])
        providers["EPIC"] = {
            **providers["EPIC"],
            "fhir": {**providers["EPIC"]["fhir"], "urlPrefix": FORGED_PREFIX},
        }
        settings["providers"] = providers
        entry = {k: v for k, v in latest.items() if k not in ("_id", "chain")}
        entry.update(version=version, changedAt=now, settings=settings)
        await history.insert_one(entry)
    finally:
        await writer.close()
    return version


async def test_rollback_does_not_sign_an_unchained_entry_placed_past_a_gap(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await _configure(gateway, tenant_id)
    forged = await _forge_past_a_gap(database_url, tenant_id)

    answer = await gateway.post(ROLLBACK, tenantId=tenant_id, to=forged)

    assert answer.get("errors", [{}])[0].get("extensions") == {"code": "HISTORY_TAMPERED"}, answer
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["fhir"]["urlPrefix"] != FORGED_PREFIX, read


async def test_a_read_never_serves_an_unchained_entry_placed_past_a_gap(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await _configure(gateway, tenant_id)
    await gateway.execute(READ, tenantId=tenant_id)  # known to this process, and cached
    await _forge_past_a_gap(database_url, tenant_id)

    # The change feed announces the insert; the read cache and the repair task act on it.
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + WATCH_S
    while asyncio.get_running_loop().time() < deadline:
        read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
        seen.append(read)
        if read["fhir"]["urlPrefix"] == FORGED_PREFIX:
            break
        await asyncio.sleep(0.5)

    assert all(read["fhir"]["urlPrefix"] == "/FHIR/R5" for read in seen), seen[-1]


async def test_rollback_does_not_sign_a_version_when_every_entry_is_stripped_of_its_chain(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    # Stripping only the older entries is caught (the next entry names a hash); stripping them
    # all, the newest included, leaves nothing that says the tenant's history was ever chained.
    await _configure(gateway, tenant_id)
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FORGED_PREFIX}},
        )
    finally:
        await writer.close()

    answer = await gateway.post(ROLLBACK, tenantId=tenant_id, to=2)

    assert answer.get("errors", [{}])[0].get("extensions") == {"code": "HISTORY_TAMPERED"}, answer


async def test_the_repair_task_does_not_apply_an_unchained_entry_placed_past_a_gap(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    # A forged next version is never applied (tests/faults/test_forged_orphan.py); past a gap,
    # the repair task takes the forgery for an orphan and rolls the document forward to it.
    await _configure(gateway, tenant_id)
    await _forge_past_a_gap(database_url, tenant_id)

    reader: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    document: dict[str, Any] | None = None
    try:
        documents = reader[TEST_DATABASE]["tenant_settings"]
        deadline = asyncio.get_running_loop().time() + WATCH_S
        while asyncio.get_running_loop().time() < deadline:
            document = await documents.find_one({"_id": tenant_id})
            assert document is not None
            if document["version"] != 3:
                break
            await asyncio.sleep(0.5)
    finally:
        await reader.close()

    assert document is not None and document["version"] == 3, document and document["version"]
    assert document["providers"]["EPIC"]["fhir"]["urlPrefix"] == "/FHIR/R5"
