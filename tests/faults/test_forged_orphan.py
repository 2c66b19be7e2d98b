"""A history entry written straight into the database by someone without the deployment's key
looks like an orphan (a version in history whose document and audit entry are missing). The
gateway finishes real orphans by itself; a forged one it must never apply: not by its repair
task, not for the tenant's next writer. The tenant's writes are refused with HISTORY_TAMPERED
instead, the forgery is logged on the security log (tenant and version, not its content) and
counted, and the document and audit log stay as the gateway wrote them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.gql.test_change_feed_recovery import STORE_KEY
from tests.gql.test_configuration_changed import new_tenant
from tests.ledger import HISTORY, read_ledger
from tests.processes import GatewayProcess

DATABASE = "forged"
FORGED = "FORGED-BY-DB-WRITER"
# Generous: the repair task looks at a version another process announced after a grace period
# of seconds; the bound only keeps a broken gateway from hanging the test.
NOTICED_WITHIN_S = 60

READ_WAITLISTING = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr { ... on EllkaySettings { waitlistingStatusName } }
  }
}
"""


def forge_next_version(database_url: str, tenant_id: str) -> int:
    """Insert the tenant's next history entry as a database writer without the key would: the
    previous entry's hash as ``prev`` (public), a made-up hash and MAC. Returns the version."""
    client: MongoClient[dict[str, Any]] = MongoClient(database_url)
    try:
        history = client[DATABASE][HISTORY]
        latest = history.find_one({"tenantId": tenant_id}, sort=[("version", -1)])
        assert latest is not None
        version = int(latest["version"]) + 1
        now = datetime.now(UTC).replace(microsecond=0)
        settings = dict(latest["settings"], version=version, updatedAt=now, updatedBy="alice")
        providers = dict(settings["providers"])
        providers["ELLKAY"] = {
            **providers["ELLKAY"],
            "ehr": {**providers["ELLKAY"]["ehr"], "waitlistingStatusName": FORGED},
        }
        settings["providers"] = providers
        history.insert_one(
            {
                "tenantId": tenant_id,
                "version": version,
                "changedAt": now,
                "actor": "alice",
                "changedBlocks": ["EHR"],
                "changedPaths": ["providers.ELLKAY.ehr.waitlistingStatusName"],
                "settings": settings,
                "audit": {"operation": "updateEhrSettings", "roles": ["editor"]},
                "chain": {"prev": latest["chain"]["hash"], "hash": "0" * 64, "mac": "0" * 64},
            }
        )
    finally:
        client.close()
    return version


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    started = GatewayProcess(
        tmp_path / "gateway", EHRGW_MONGODB_URL=database.url, EHRGW_DATABASE=DATABASE
    )
    yield started
    started.stop()


def store(gateway: GatewayProcess, tenant_id: str, value: str) -> dict[str, Any]:
    """The whole answer to a write of ``value`` (errors included)."""
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": STORE_KEY, "variables": {"tenantId": tenant_id, "key": value}},
        headers={"authorization": f"Bearer {gateway.token}"},
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    return body


def refusal_logged(gateway: GatewayProcess, tenant_id: str, version: int) -> str:
    """The security log's line about the forged entry, once the gateway has met it."""
    started = time.monotonic()
    while True:
        for line in gateway.printed().splitlines():
            if f"tenant {tenant_id}: history version {version} does not verify" in line:
                return line
        assert time.monotonic() - started < NOTICED_WITHIN_S, gateway.printed()[-4000:]
        time.sleep(0.2)


def tampered_count(gateway: GatewayProcess) -> float:
    scraped = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    for line in scraped.splitlines():
        if line.startswith("ehrgw_history_entries_tampered_total "):
            return float(line.split()[1])
    raise AssertionError(scraped)


def assert_not_applied(gateway: GatewayProcess, database_url: str, tenant_id: str) -> None:
    ledger = read_ledger(database_url, DATABASE, tenant_id)
    assert ledger.document_version == 2 and ledger.audited_versions == [1, 2], ledger
    read = gateway.graphql(READ_WAITLISTING, tenantId=tenant_id)["data"]["integrationSettings"]
    assert read["version"] == 2
    assert read["ehr"]["waitlistingStatusName"] == "genuine"
    assert "rolled forward to version 3" not in gateway.printed()


def assert_write_refused(gateway: GatewayProcess, tenant_id: str) -> None:
    answer = store(gateway, tenant_id, "after")
    assert answer["data"] is None, answer
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "HISTORY_TAMPERED"}, error
    assert f"tenant {tenant_id}" in error["message"] and "version 3" in error["message"]
    assert FORGED not in error["message"]


def test_the_repair_task_does_not_apply_a_forged_orphan(
    gateway: GatewayProcess, database: EmbeddedMongo
) -> None:
    tenant_id = new_tenant(gateway)  # version 1
    assert store(gateway, tenant_id, "genuine")["data"]["updateEhrSettings"]["settings"] == {
        "version": 2
    }

    forged = forge_next_version(database.url, tenant_id)
    line = refusal_logged(gateway, tenant_id, forged)
    assert "ehr_gateway.security" in line and FORGED not in line, line

    assert_not_applied(gateway, database.url, tenant_id)
    assert tampered_count(gateway) == 1
    assert_write_refused(gateway, tenant_id)
    assert_write_refused(gateway, tenant_id)  # and again: counted and logged once
    assert tampered_count(gateway) == 1


def test_the_next_writer_does_not_apply_a_forged_orphan(
    gateway: GatewayProcess, database: EmbeddedMongo
) -> None:
    tenant_id = new_tenant(gateway)
    assert store(gateway, tenant_id, "genuine")["data"]["updateEhrSettings"]["settings"] == {
        "version": 2
    }

    forge_next_version(database.url, tenant_id)
    # At once, before the repair task's grace period: the write meets the forged version 3.
    assert_write_refused(gateway, tenant_id)
    assert_not_applied(gateway, database.url, tenant_id)
    assert tampered_count(gateway) == 1
