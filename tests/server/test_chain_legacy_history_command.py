"""`ehr-gateway chain-legacy-history --tenant T`, run as an operator would after upgrading from a
gateway that wrote no chain: until they are adopted, the tenant's versions from before the chain
are never rolled back to; once the operator has checked and adopted them, they are, and the whole
history verifies. A history with a gap is left as it is, and so is a tenant that shows it was ever
chained (a database writer stripped its links to pass an edit off as history from before the
chain): the command refuses it, names why, and changes nothing. One tenant at a time: --tenant is
required."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ehr_gateway.server.config import GatewayConfig
from tests.conftest import TEST_DATABASE, gateway_config, open_gateway
from tests.documents import SELECT_EPIC
from tests.older_gateway import as_older_gateway_left_it
from tests.own_database import own_database
from tests.processes import environment

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
  }
}
"""


@pytest.fixture
async def own_config(database_url: str, tmp_path: Path) -> AsyncIterator[GatewayConfig]:
    """A database of its own for a test that leaves a database writer's entries behind."""
    async with own_database(database_url, tmp_path) as config:
        yield config


def ehr_gateway(command: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", command, *args],
        env=environment(**settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def _as_before_the_chain(database_url: str, tenant_id: str) -> None:
    """The tenant as a gateway from before the chain left it: no links, no sequence numbers,
    no seal."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await as_older_gateway_left_it(client[TEST_DATABASE], tenant_id)
    finally:
        await client.close()


def _settings(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "EHRGW_MONGODB_URL": database_url,
        "EHRGW_DATABASE": TEST_DATABASE,
        "EHRGW_DATA_DIR": str(data_dir),
    }


async def test_history_from_before_the_chain_is_rolled_back_to_only_once_adopted(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
    await _as_before_the_chain(database_url, tenant_id)
    settings = _settings(database_url, tmp_path)
    unadopted = ehr_gateway("verify-audit", "--tenant", tenant_id, **settings)
    assert unadopted.returncode == 1
    assert "history: BROKEN at version 1 written " in unadopted.stdout
    assert ": UNCHAINED: it carries no chain link: not adopted" in unadopted.stdout
    assert "audit log: intact, no chained entries, 2 legacy (unchained) before them" in (
        unadopted.stdout
    )

    async for gateway in open_gateway(config):
        refused = await gateway.post(ROLLBACK, tenantId=tenant_id, to=1)
        assert refused["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
        assert "chain-legacy-history --tenant" in refused["errors"][0]["message"]

    adopted = ehr_gateway("chain-legacy-history", "--tenant", tenant_id, **settings)

    assert adopted.returncode == 0, adopted.stderr
    assert adopted.stdout.splitlines() == [
        f"tenant {tenant_id}: signed 2 entries from before the chain (versions 1 to 2); "
        "history verified up to version 2"
    ]
    verified = ehr_gateway("verify-audit", "--tenant", tenant_id, **settings)
    assert "history: intact, 2 entries verified; head version 2 hash " in verified.stdout
    async for gateway in open_gateway(config):
        rolled_back = await gateway.execute(ROLLBACK, tenantId=tenant_id, to=1)
        assert rolled_back["rollbackSettings"]["settings"] == {
            "version": 3,
            "fhir": {"urlPrefix": None},
        }
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R5")  # v4
        rolled_back = await gateway.execute(ROLLBACK, tenantId=tenant_id, to=2)
        assert rolled_back["rollbackSettings"]["settings"] == {
            "version": 5,
            "fhir": {"urlPrefix": "/FHIR/R4"},
        }
    again = ehr_gateway("chain-legacy-history", "--tenant", tenant_id, **settings)
    assert again.stdout.splitlines() == [f"tenant {tenant_id}: nothing to adopt"]


async def test_a_history_with_a_missing_version_is_left_as_it_was(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R5")  # v3
    await _as_before_the_chain(database_url, tenant_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = client[TEST_DATABASE]["tenant_settings_history"]
        await history.delete_one({"tenantId": tenant_id, "version": 2})
        left = ehr_gateway(
            "chain-legacy-history", "--tenant", tenant_id, **_settings(database_url, tmp_path)
        )
        chained = await history.count_documents({"tenantId": tenant_id, "chain": {"$exists": True}})
    finally:
        await client.close()

    assert left.returncode == 1
    assert left.stdout.splitlines() == [
        f"tenant {tenant_id}: LEFT AS IT WAS: version 2 is missing or repeated"
    ]
    assert chained == 0


OLD_PREFIX = "/FHIR/R4"
NEW_PREFIX = "/FHIR/R4-new"
FOREIGN_PREFIX = "/attacker/FHIR"
# What a database writer strips from a tenant a gateway with the chain wrote, to pass its
# history off as from before the chain, and the trace left behind that gives it away.
STRIPPED = {
    "history links only: the audit log is numbered": (
        {"history": {"$unset": {"chain": ""}}},
        "its audit log has an entry with a sequence number",
    ),
    "history links and audit log: the document is sealed": (
        {
            "history": {"$unset": {"chain": ""}},
            "audit_log": {"$unset": {"chain": "", "seq": ""}},
        },
        "its settings document (version 3) carries a seal",
    ),
    "sequence numbers and seal: the history links are emptied, not removed": (
        {
            "history": {"$set": {"chain": None}},
            "audit_log": {"$unset": {"chain": "", "seq": ""}},
            "settings": {"$unset": {"seal": ""}},
        },
        "history version 1 carries a chain field",
    ),
    "history links, seal and sequence numbers: the audit log's links are left": (
        {
            "history": {"$unset": {"chain": ""}},
            "audit_log": {"$unset": {"seq": ""}},
            "settings": {"$unset": {"seal": ""}},
        },
        "its audit log has an entry with a chain field",
    ),
    # The directory row's seal is an HMAC with the chain's key: only a gateway with the chain
    # writes one, so the row left behind is trace enough.
    "history links, audit log and seal: the directory row is left": (
        {
            "history": {"$unset": {"chain": ""}},
            "audit_log": {"$unset": {"chain": "", "seq": ""}},
            "settings": {"$unset": {"seal": ""}},
        },
        "its settings document (version 3) carries a tenant directory row",
    ),
}
COLLECTIONS = {
    "history": "tenant_settings_history",
    "audit_log": "audit_log",
    "settings": "tenant_settings",
}


@pytest.mark.parametrize("stripped", list(STRIPPED))
async def test_a_chained_tenant_stripped_and_edited_is_left_as_it_was(
    database_url: str, tmp_path: Path, tenant_id: str, stripped: str
) -> None:
    changes, evidence = STRIPPED[stripped]
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix=OLD_PREFIX)  # v2
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix=NEW_PREFIX)  # v3
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        db = client[TEST_DATABASE]
        for name, update in changes.items():
            key = "_id" if name == "settings" else "tenantId"
            await db[COLLECTIONS[name]].update_many({key: tenant_id}, update)
        history = db["tenant_settings_history"]
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
        left = ehr_gateway(
            "chain-legacy-history", "--tenant", tenant_id, **_settings(database_url, tmp_path)
        )
        signed = await history.count_documents(
            {"tenantId": tenant_id, "chain.mac": {"$exists": True}}
        )
    finally:
        await client.close()
    async for gateway in open_gateway(config):
        rolled = await gateway.post(ROLLBACK, tenantId=tenant_id, to=2)

    assert left.returncode == 1, left.stdout
    (line,) = left.stdout.splitlines()
    assert line.startswith(f"tenant {tenant_id}: LEFT AS IT WAS: {evidence}"), line
    assert "restore its history from a backup" in line
    assert signed == 0
    assert rolled["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, rolled
    assert FOREIGN_PREFIX not in str(rolled)


SET_FHIR_ONCE = """
mutation SetFhirOnce($tenantId: ID!, $prefix: String, $key: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}},
                     idempotencyKey: $key) { __typename }
}
"""


async def test_a_tenant_whose_history_keeps_idempotency_keys_is_left_as_it_was(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Idempotency keys came after the chain: a history entry that keeps one was written by a
    gateway with the chain, however much else a database writer stripped (links, sequence
    numbers, the seal, the directory row)."""
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR_ONCE, tenantId=tenant_id, prefix=OLD_PREFIX, key="k-2")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        db = client[TEST_DATABASE]
        history = db["tenant_settings_history"]
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await db["audit_log"].update_many(
            {"tenantId": tenant_id}, {"$unset": {"chain": "", "seq": ""}}
        )
        await db["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$unset": {"seal": "", "directory": ""}}
        )
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
        left = ehr_gateway(
            "chain-legacy-history", "--tenant", tenant_id, **_settings(database_url, tmp_path)
        )
        signed = await history.count_documents(
            {"tenantId": tenant_id, "chain.mac": {"$exists": True}}
        )
    finally:
        await client.close()

    assert left.returncode == 1, left.stdout
    (line,) = left.stdout.splitlines()
    assert line.startswith(
        f"tenant {tenant_id}: LEFT AS IT WAS: history version 2 carries an idempotency key"
    ), line
    assert signed == 0


def test_the_tenant_to_adopt_must_be_named() -> None:
    every = ehr_gateway("chain-legacy-history")

    assert every.returncode == 2
    assert "the following arguments are required: --tenant" in every.stderr


async def test_a_tenant_whose_settings_version_is_of_another_type_is_left_as_it_was(
    database_url: str, own_config: GatewayConfig, tmp_path: Path, tenant_id: str
) -> None:
    """The settings document's version is compared with the end of the history to adopt: one
    of a type no gateway writes (a database writer's) is named, not a crash of the command. A
    database of its own: the document stays behind."""
    config = own_config
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        database = client[config.database]
        await as_older_gateway_left_it(database, tenant_id)
        await database["tenant_settings"].update_one({"_id": tenant_id}, {"$set": {"version": "2"}})
        settings = {**_settings(database_url, tmp_path), "EHRGW_DATABASE": config.database}
        left = ehr_gateway("chain-legacy-history", "--tenant", tenant_id, **settings)
        chained = await database["tenant_settings_history"].count_documents(
            {"tenantId": tenant_id, "chain": {"$exists": True}}
        )
    finally:
        await client.close()

    assert left.returncode == 1, left.stderr
    assert left.stdout.splitlines() == [
        f"tenant {tenant_id}: LEFT AS IT WAS: its settings document's version is str, a type no "
        "gateway writes; restore it from a backup"
    ]
    assert chained == 0
