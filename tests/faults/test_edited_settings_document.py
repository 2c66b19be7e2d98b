"""A database writer without the deployment's key edits a tenant's settings document (not its
history): here a FHIR prefix that moves the host to the attacker's, which today's rules refuse
and the stored-value rules read back. Reads and writes start from the document, so without a
check the edit is served, and the next ordinary write to any other block, on any replica, signs
it into a properly chained version while the audit log shows only that write's change.

Each document carries a seal (a hash and MAC made like a history entry's chain): a document
whose seal does not verify is replaced, as it loads, by its version's history entry if that
verifies (logged on the security log: tenant and version, never the values), and refused with
HISTORY_TAMPERED if not. A document from before seals is compared with its history entry."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import GENERATE_SIGNING_KEY, READ_VERSION, SELECT_EPIC
from tests.gql.test_tenants_query import directory_config

SET_FHIR_PREFIX = """
mutation SetFhirPrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) { __typename }
}
"""
SET_CLIENT_ID = """
mutation SetClientId($tenantId: ID!) {
  updateHeaderSettings(tenantId: $tenantId, input: {epic: {epicClientId: "client-2"}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""
READ_FHIR_PREFIX = """
query ReadFhirPrefix($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { urlPrefix } }
  }
}
"""
SAVED_PREFIX = "/FHIR/R4"
FOREIGN_PREFIX = "@attacker.example.test/FHIR"
PREFIX_PATH = "providers.EPIC.fhir.urlPrefix"


@pytest.fixture
async def second(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """Another replica over the same database and key, which has not cached the tenant."""
    async for opened in open_gateway(gateway_config(database_url, tmp_path)):
        yield opened


async def _epic_tenant(gateway: Gateway, tenant_id: str) -> None:
    """Version 2: Epic with the FHIR prefix SAVED_PREFIX."""
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=SAVED_PREFIX)


async def _edit(
    database_url: str,
    tenant_id: str,
    changes: dict[str, Any],
    *,
    unset: dict[str, str] | None = None,
    history: bool = False,
) -> None:
    """Edit the tenant's settings document as a database writer would (and its newest history
    entry's settings too, with ``history``)."""
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        db = writer[TEST_DATABASE]
        update: dict[str, Any] = {"$set": changes} if changes else {}
        if unset:
            update["$unset"] = unset
        document = await db["tenant_settings"].find_one_and_update({"_id": tenant_id}, update)
        assert document is not None
        if history:
            await db["tenant_settings_history"].update_one(
                {"tenantId": tenant_id, "version": document["version"]},
                {"$set": {f"settings.{path}": value for path, value in changes.items()}},
            )
    finally:
        await writer.close()


async def _history_prefix(database_url: str, tenant_id: str, version: int) -> Any:
    reader: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        entry = await reader[TEST_DATABASE]["tenant_settings_history"].find_one(
            {"tenantId": tenant_id, "version": version}
        )
    finally:
        await reader.close()
    assert entry is not None
    return entry["settings"]["providers"]["EPIC"]["fhir"]["urlPrefix"]


async def test_the_next_write_on_another_replica_does_not_sign_a_value_edited_into_the_document(
    database_url: str, gateway: Gateway, second: Gateway, tenant_id: str
) -> None:
    await _epic_tenant(gateway, tenant_id)
    await _edit(database_url, tenant_id, {PREFIX_PATH: FOREIGN_PREFIX})

    saved = await second.execute(SET_CLIENT_ID, tenantId=tenant_id)

    assert saved["updateHeaderSettings"] == {
        "__typename": "SettingsSaved",
        "settings": {"version": 3},
    }
    assert await _history_prefix(database_url, tenant_id, 3) == SAVED_PREFIX
    read = await second.execute(READ_FHIR_PREFIX, tenantId=tenant_id)
    assert read["integrationSettings"] == {"version": 3, "fhir": {"urlPrefix": SAVED_PREFIX}}


async def test_a_read_serves_the_history_entry_of_an_edited_document_and_logs_it(
    database_url: str,
    gateway: Gateway,
    second: Gateway,
    tenant_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _epic_tenant(gateway, tenant_id)
    await _edit(database_url, tenant_id, {PREFIX_PATH: FOREIGN_PREFIX})

    with caplog.at_level(logging.WARNING, logger="ehr_gateway.security"):
        read = await second.execute(READ_FHIR_PREFIX, tenantId=tenant_id)

    assert read["integrationSettings"] == {"version": 2, "fhir": {"urlPrefix": SAVED_PREFIX}}
    warnings = [r.getMessage() for r in caplog.records if r.name == "ehr_gateway.security"]
    assert any(tenant_id in line and "version 2" in line for line in warnings), warnings
    assert not any(FOREIGN_PREFIX in line for line in caplog.messages)


async def test_an_edited_document_whose_history_entry_does_not_verify_is_refused(
    database_url: str, gateway: Gateway, second: Gateway, tenant_id: str
) -> None:
    await _epic_tenant(gateway, tenant_id)
    await _edit(database_url, tenant_id, {PREFIX_PATH: FOREIGN_PREFIX}, history=True)

    read = await second.post(READ_FHIR_PREFIX, tenantId=tenant_id)
    saved = await second.post(SET_CLIENT_ID, tenantId=tenant_id)

    for answer in (read, saved):
        assert answer["data"] is None or not any(answer["data"].values()), answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["HISTORY_TAMPERED"]
        assert FOREIGN_PREFIX not in str(answer)
    assert await _history_prefix(database_url, tenant_id, 2) == FOREIGN_PREFIX  # as forged


async def test_a_document_with_its_seal_removed_is_checked_against_its_history_entry(
    database_url: str, gateway: Gateway, second: Gateway, tenant_id: str
) -> None:
    """As a document written before seals: read against its version's history entry."""
    await _epic_tenant(gateway, tenant_id)
    await _edit(database_url, tenant_id, {PREFIX_PATH: FOREIGN_PREFIX}, unset={"seal": ""})

    read = await second.execute(READ_FHIR_PREFIX, tenantId=tenant_id)
    saved = await second.execute(SET_CLIENT_ID, tenantId=tenant_id)

    assert read["integrationSettings"] == {"version": 2, "fhir": {"urlPrefix": SAVED_PREFIX}}
    assert saved["updateHeaderSettings"]["__typename"] == "SettingsSaved"
    assert await _history_prefix(database_url, tenant_id, 3) == SAVED_PREFIX


async def test_a_document_from_before_seals_that_matches_its_history_is_served_and_sealed(
    database_url: str, gateway: Gateway, second: Gateway, tenant_id: str
) -> None:
    await _epic_tenant(gateway, tenant_id)
    await _edit(database_url, tenant_id, {}, unset={"seal": ""})

    read = await second.execute(READ_FHIR_PREFIX, tenantId=tenant_id)
    await second.execute(SET_CLIENT_ID, tenantId=tenant_id)
    reader: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        document = await reader[TEST_DATABASE]["tenant_settings"].find_one({"_id": tenant_id})
    finally:
        await reader.close()

    assert read["integrationSettings"] == {"version": 2, "fhir": {"urlPrefix": SAVED_PREFIX}}
    assert document is not None and set(document["seal"]) == {"hash", "mac", "keyId"}


NEW_PREFIX = "/FHIR/R4-new"


async def _replay_version_2(database_url: str, gateway: Gateway, tenant_id: str) -> None:
    """Version 3 (NEW_PREFIX) is written, then a database writer puts the sealed document of
    version 2 (SAVED_PREFIX) back in its place."""
    await _epic_tenant(gateway, tenant_id)
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        settings = writer[TEST_DATABASE]["tenant_settings"]
        version_2 = await settings.find_one({"_id": tenant_id})
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)
        await settings.replace_one({"_id": tenant_id}, version_2)
    finally:
        await writer.close()


async def test_an_older_sealed_document_put_back_is_not_served(
    database_url: str, gateway: Gateway, tmp_path: Path, tenant_id: str
) -> None:
    """Its seal verifies (a gateway wrote it), but history holds a newer version: a replica
    that loads it (started after the replay, so no change feed told it of version 3) serves
    and writes on version 3, and the document is brought up to date."""
    await _replay_version_2(database_url, gateway, tenant_id)

    async for later in open_gateway(gateway_config(database_url, tmp_path)):
        read = await later.execute(READ_FHIR_PREFIX, tenantId=tenant_id)
        saved = await later.execute(SET_CLIENT_ID, tenantId=tenant_id)

    assert read["integrationSettings"] == {"version": 3, "fhir": {"urlPrefix": NEW_PREFIX}}
    assert saved["updateHeaderSettings"] == {
        "__typename": "SettingsSaved",
        "settings": {"version": 4},
    }
    assert await _history_prefix(database_url, tenant_id, 4) == NEW_PREFIX


async def test_an_older_document_put_back_behind_a_forged_newest_entry_is_refused(
    database_url: str, gateway: Gateway, tmp_path: Path, tenant_id: str
) -> None:
    """A forged entry after version 3 does not make the replayed version 2 current again: a
    gateway's version 3 follows the document, so what is current cannot be told."""
    await _replay_version_2(database_url, gateway, tenant_id)
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        forged = await history.find_one({"tenantId": tenant_id, "version": 2})
        assert forged is not None
        forged.pop("_id")
        forged["version"] = 4
        await history.insert_one(forged)
    finally:
        await writer.close()

    async for later in open_gateway(gateway_config(database_url, tmp_path)):
        read = await later.post(READ_FHIR_PREFIX, tenantId=tenant_id)

    assert [e["extensions"]["code"] for e in read["errors"]] == ["HISTORY_TAMPERED"], read
    assert SAVED_PREFIX not in str(read)


async def test_an_older_document_put_back_behind_an_edited_newest_entry_is_refused(
    database_url: str, gateway: Gateway, tmp_path: Path, tenant_id: str
) -> None:
    """A database writer puts the sealed document of version 2 back and changes a byte of the
    gateway's entry for version 3 (its actor), so the only newer version history holds does
    not verify: what is current cannot be told, and the replayed version 2 is not served."""
    await _replay_version_2(database_url, gateway, tenant_id)
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[TEST_DATABASE]["tenant_settings_history"].update_one(
            {"tenantId": tenant_id, "version": 3}, {"$set": {"actor": "someone-else"}}
        )
    finally:
        await writer.close()

    async for later in open_gateway(gateway_config(database_url, tmp_path)):
        read = await later.post(READ_FHIR_PREFIX, tenantId=tenant_id)

    assert read.get("data", {}).get("integrationSettings") is None, read
    assert read["errors"][0]["extensions"]["code"] == "HISTORY_TAMPERED", read


# Parts of a document set to a shape no gateway writes: the seal check could not read them
# (an internal error on every read of the tenant, and a 500 on its public key set).
RETYPED_PARTS: dict[str, dict[str, Any]] = {
    "a provider's settings": {"providers.EPIC": "not settings"},
    "a block": {"providers.EPIC.headers": "not headers"},
    "the signing keys": {"providers.EPIC.signingKeys": {"kid": "not a list"}},
}


@pytest.mark.parametrize("edit", list(RETYPED_PARTS))
async def test_a_document_part_of_another_shape_is_served_from_its_history_entry(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    # A database of its own: a malformed document must not reach other tests' gateways.
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await _epic_tenant(gateway, tenant_id)
        await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)  # v3
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[config.database]["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$set": RETYPED_PARTS[edit]}
        )
    finally:
        await writer.close()

    async for gateway in open_gateway(config):
        read = await gateway.post(READ_FHIR_PREFIX, tenantId=tenant_id)
        keys = await gateway.client.get(f"/tenants/{tenant_id}/.well-known/jwks.json")

    assert read == {
        "data": {"integrationSettings": {"version": 3, "fhir": {"urlPrefix": SAVED_PREFIX}}}
    }
    assert keys.status_code == 200, keys.text
    assert len(keys.json()["keys"]) == 1, keys.text


async def test_a_signing_key_added_to_the_document_is_served_from_its_history_entry(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """A database writer appends a public key of its own (no private half) to the tenant's
    OAuth signing keys in its settings document: the document is not served, its version's
    history entry is, as for any other edit (not an internal error on every read)."""
    # A database of its own: a malformed document must not reach other tests' gateways.
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)  # v2
    public = {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "foreign", "alg": "RS384"}
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[config.database]["tenant_settings"].update_one(
            {"_id": tenant_id},
            {"$push": {"providers.EPIC.signingKeys": {"kid": "foreign", "publicJwk": public}}},
        )
    finally:
        await writer.close()

    async for gateway in open_gateway(config):
        read = await gateway.post(READ_VERSION, tenantId=tenant_id)

    assert read == {"data": {"integrationSettings": {"version": 2}}}, read


async def test_a_forged_entry_after_the_document_refuses_reads_as_it_refuses_writes(
    database_url: str, gateway: Gateway, tmp_path: Path, tenant_id: str
) -> None:
    """An entry of the next version that does not verify (inserted, or a gateway's version
    edited after an older document was put back) leaves what is current unknown: the sealed
    document is not served as if it were."""
    await _epic_tenant(gateway, tenant_id)
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        forged = await history.find_one({"tenantId": tenant_id, "version": 2})
        assert forged is not None
        forged.pop("_id")
        forged["version"] = 3
        await history.insert_one(forged)
    finally:
        await writer.close()

    async for later in open_gateway(gateway_config(database_url, tmp_path)):
        read = await later.post(READ_FHIR_PREFIX, tenantId=tenant_id)
        saved = await later.post(SET_CLIENT_ID, tenantId=tenant_id)

    assert [e["extensions"]["code"] for e in read["errors"]] == ["HISTORY_TAMPERED"], read
    assert [e["extensions"]["code"] for e in saved["errors"]] == ["HISTORY_TAMPERED"], saved
