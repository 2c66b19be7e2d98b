"""A history entry written straight into the database by someone without the deployment's key
looks like an orphan (a version in history whose document and audit entry are missing). The
gateway finishes real orphans by itself; a forged one it must never apply: not by its repair
task, not for the tenant's next writer. The tenant's writes are refused with HISTORY_TAMPERED
instead, the forgery is logged on the security log (tenant and version, not its content) and
counted, and the document and audit log stay as the gateway wrote them."""

from __future__ import annotations

import contextlib
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
from tests.processes import GatewayProcess, TransportWsClient

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
    return _forge(database_url, tenant_id, ahead=1, chained=True)


def forge_past_a_gap(database_url: str, tenant_id: str) -> int:
    """Insert an unchained entry two versions past the newest, none between: with the version
    before it missing, nothing says the tenant's chain had begun. Returns the version."""
    return _forge(database_url, tenant_id, ahead=2, chained=False)


def _forge(database_url: str, tenant_id: str, *, ahead: int, chained: bool) -> int:
    client: MongoClient[dict[str, Any]] = MongoClient(database_url)
    try:
        history = client[DATABASE][HISTORY]
        latest = history.find_one({"tenantId": tenant_id}, sort=[("version", -1)])
        assert latest is not None
        version = int(latest["version"]) + ahead
        now = datetime.now(UTC).replace(microsecond=0)
        settings = dict(latest["settings"], version=version, updatedAt=now, updatedBy="alice")
        providers = dict(settings["providers"])
        providers["ELLKAY"] = {
            **providers["ELLKAY"],
            "ehr": {**providers["ELLKAY"]["ehr"], "waitlistingStatusName": FORGED},
        }
        settings["providers"] = providers
        entry = {
            "tenantId": tenant_id,
            "version": version,
            "changedAt": now,
            "actor": "alice",
            "changedBlocks": ["EHR"],
            "changedPaths": ["providers.ELLKAY.ehr.waitlistingStatusName"],
            "settings": settings,
            "audit": {"operation": "updateEhrSettings", "roles": ["editor"]},
        }
        if chained:
            entry["chain"] = {"prev": latest["chain"]["hash"], "hash": "0" * 64, "mac": "0" * 64}
        history.insert_one(entry)
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


def assert_not_applied(
    gateway: GatewayProcess,
    database_url: str,
    tenant_id: str,
    forged: int = 3,
    *,
    cached: bool = False,
) -> None:
    """Nothing of the forged entry is stored on or served. A read that loads the tenant meets
    it and answers HISTORY_TAMPERED, as writes do: with an entry after the document that does
    not verify, which version is current cannot be told (the document may be an older one put
    back). A read served from the settings cache serves what the gateway last wrote."""
    ledger = read_ledger(database_url, DATABASE, tenant_id)
    assert ledger.document_version == 2 and ledger.audited_versions == [1, 2], ledger
    read = store_read(gateway, tenant_id)
    assert FORGED not in str(read), read
    if cached:
        settings = read["data"]["integrationSettings"]
        assert settings == {"version": 2, "ehr": {"waitlistingStatusName": "genuine"}}, read
    else:
        codes = [error["extensions"]["code"] for error in read.get("errors", [])]
        assert codes == ["HISTORY_TAMPERED"], read
    assert f"rolled forward to version {forged}" not in gateway.printed()


def store_read(gateway: GatewayProcess, tenant_id: str) -> dict[str, Any]:
    """The whole answer to a read of the tenant (errors included)."""
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": READ_WAITLISTING, "variables": {"tenantId": tenant_id}},
        headers={"authorization": f"Bearer {gateway.token}"},
        timeout=10,
    )
    body: dict[str, Any] = response.json()
    return body


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


def test_an_unchained_entry_past_a_gap_is_neither_applied_nor_served(
    gateway: GatewayProcess, database: EmbeddedMongo
) -> None:
    # Past a gap, it once passed as an entry from before the chain: the read cache served it
    # and the repair task rolled the document forward to it.
    tenant_id = new_tenant(gateway)
    assert store(gateway, tenant_id, "genuine")["data"]["updateEhrSettings"]["settings"] == {
        "version": 2
    }
    gateway.graphql(READ_WAITLISTING, tenantId=tenant_id)  # cached: the feed keeps it current

    forged = forge_past_a_gap(database.url, tenant_id)
    line = refusal_logged(gateway, tenant_id, forged)
    assert "UNCHAINED" in line and FORGED not in line, line

    assert_not_applied(gateway, database.url, tenant_id, forged, cached=True)


CONFIGURATION_CHANGED = """
subscription ConfigurationChanged($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) {
    version
    settings { ehr { ... on EllkaySettings { waitlistingStatusName } } }
  }
}
"""
# Generous: the feed announces an insert within a second; the bound only ends a broken run.
DELIVERED_WITHIN_S = 15


async def test_a_subscriber_never_receives_a_forged_history_entry(
    gateway: GatewayProcess, database: EmbeddedMongo
) -> None:
    tenant_id = new_tenant(gateway)  # version 1
    store(gateway, tenant_id, "genuine")  # version 2
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    try:
        await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id)
        gateway.wait_for_feed_subscribers(1)
        forged = forge_next_version(database.url, tenant_id)
        refusal_logged(gateway, tenant_id, forged)  # the feed met it

        received = []
        with contextlib.suppress(TimeoutError):
            while True:
                received.append(await subscriber.next_data("1", within=DELIVERED_WITHIN_S))
    finally:
        await subscriber.connection.close()

    assert received == [], received


async def test_a_replay_from_since_version_leaves_out_an_altered_entry(
    gateway: GatewayProcess, database: EmbeddedMongo
) -> None:
    tenant_id = new_tenant(gateway)  # version 1
    store(gateway, tenant_id, "genuine")  # version 2
    store(gateway, tenant_id, "later")  # version 3
    client: MongoClient[dict[str, Any]] = MongoClient(database.url)
    try:
        client[DATABASE][HISTORY].update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.ELLKAY.ehr.waitlistingStatusName": FORGED}},
        )
    finally:
        client.close()

    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    try:
        await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=1)
        first = await subscriber.next_data("1", within=DELIVERED_WITHIN_S)
    finally:
        await subscriber.connection.close()

    assert first["configurationChanged"] == {
        "version": 3,
        "settings": {"ehr": {"waitlistingStatusName": "later"}},
    }, first
    line = refusal_logged(gateway, tenant_id, 2)
    assert "ALTERED" in line and FORGED not in line, line
