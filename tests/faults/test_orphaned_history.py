"""A version whose history entry (the commit point) is stored but whose document and audit entry
are not, because its gateway died between the steps, is finished by a running gateway by itself:
no write to that tenant is needed. Two cases: the orphan appears while a gateway runs (another
replica died), and it is there when a gateway starts (the crashed replica restarts)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from ehr_gateway.storage.chain import GENESIS, history_link
from ehr_gateway.storage.embedded import EmbeddedMongo
from ehr_gateway.storage.secrets import SecretBox
from tests.gql.test_change_feed_recovery import STORE_KEY
from tests.gql.test_configuration_changed import new_tenant
from tests.ledger import HISTORY, check_ledger, read_ledger
from tests.processes import GatewayProcess

DATABASE = "orphans"
# Generous: the gateway checks a version another process announced after a grace period of
# seconds; the bound only keeps a broken gateway from hanging the test.
ROLLED_FORWARD_WITHIN_S = 60


def leave_orphan(database_url: str, tenant_id: str, gateway_dir: Path, value: str) -> int:
    """Store the tenant's next version as a gateway that died right after its commit point
    leaves it: the history entry alone, chained and MACed as the gateway writes it (with the
    deployment's key from the gateway's data dir), no audit entry, the document left behind.
    Returns the version."""
    client: MongoClient[dict[str, Any]] = MongoClient(database_url)
    try:
        history = client[DATABASE][HISTORY]
        latest = history.find_one({"tenantId": tenant_id}, sort=[("version", -1)])
        assert latest is not None
        version = int(latest["version"]) + 1
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        settings = dict(latest["settings"], version=version, updatedAt=now, updatedBy="gone")
        providers = dict(settings["providers"])
        providers["ELLKAY"] = {
            **providers["ELLKAY"],
            "ehr": {**providers["ELLKAY"]["ehr"], "waitlistingStatusName": value},
        }
        settings["providers"] = providers
        entry: dict[str, Any] = {
            "tenantId": tenant_id,
            "version": version,
            "changedAt": now,
            "actor": "gone",
            "changedBlocks": ["EHR"],
            "changedPaths": ["providers.ELLKAY.ehr.waitlistingStatusName"],
            "settings": settings,
            "audit": {"operation": "updateEhrSettings", "roles": ["editor"]},
        }
        previous = str((latest.get("chain") or {}).get("hash") or GENESIS)
        entry["chain"] = history_link(entry, previous, SecretBox.from_data_dir(gateway_dir).chain)
        history.insert_one(entry)
    finally:
        client.close()
    return version


def wait_for_roll_forward(database_url: str, tenant_id: str, version: int) -> float:
    """Seconds until the tenant's document and audit log reach ``version``."""
    started = time.monotonic()
    while True:
        ledger = read_ledger(database_url, DATABASE, tenant_id)
        if ledger.document_version == version and version in ledger.audited_versions:
            return time.monotonic() - started
        assert time.monotonic() - started < ROLLED_FORWARD_WITHIN_S, (
            f"not rolled forward within {ROLLED_FORWARD_WITHIN_S}s: document at "
            f"{ledger.document_version}, audited {ledger.audited_versions}"
        )
        time.sleep(0.2)


def start_gateway(database: EmbeddedMongo, data_dir: Path) -> GatewayProcess:
    return GatewayProcess(data_dir, EHRGW_MONGODB_URL=database.url, EHRGW_DATABASE=DATABASE)


def store(gateway: GatewayProcess, tenant_id: str, version: int, value: str) -> None:
    result = gateway.graphql(STORE_KEY, tenantId=tenant_id, key=value, expectedVersion=version - 1)[
        "data"
    ]["updateEhrSettings"]
    assert result == {"__typename": "SettingsSaved", "settings": {"version": version}}, result


def test_an_orphan_another_replica_left_is_rolled_forward_without_a_write(
    database: EmbeddedMongo, tmp_path: Path
) -> None:
    gateway = start_gateway(database, tmp_path / "gateway")
    try:
        tenant_id = new_tenant(gateway)  # version 1
        store(gateway, tenant_id, 2, "before")

        orphan = leave_orphan(database.url, tenant_id, gateway.data_dir, "orphaned")
        seconds = wait_for_roll_forward(database.url, tenant_id, orphan)
        print(f"rolled forward {seconds:.1f}s after the orphan appeared")

        check_ledger(database.url, DATABASE, tenant_id, {2: "before", 3: "orphaned"})
        assert f"tenant {tenant_id}: rolled forward to version 3" in gateway.printed()
        store(gateway, tenant_id, 4, "after")  # the next write follows it, nothing in between
        check_ledger(database.url, DATABASE, tenant_id, {3: "orphaned", 4: "after"})
    finally:
        gateway.stop()


def test_an_orphan_left_before_a_gateway_starts_is_rolled_forward_at_startup(
    database: EmbeddedMongo, tmp_path: Path
) -> None:
    crashed = start_gateway(database, tmp_path / "gateway")
    tenant_id = new_tenant(crashed)
    store(crashed, tenant_id, 2, "before")
    crashed.kill()
    orphan = leave_orphan(database.url, tenant_id, crashed.data_dir, "orphaned")

    restarted = start_gateway(database, tmp_path / "gateway")
    try:
        seconds = wait_for_roll_forward(database.url, tenant_id, orphan)
        print(f"rolled forward {seconds:.1f}s after the gateway was ready")
        check_ledger(database.url, DATABASE, tenant_id, {2: "before", 3: "orphaned"})
    finally:
        restarted.stop()
