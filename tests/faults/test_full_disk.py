"""The database's disk fills up under writer traffic: every write it refuses is answered
STORAGE_FULL (not an internal error), /readyz says writes are failing, the log names the write
and the tenant but never a value written; once space is freed the gateway is ready again by
itself, writes succeed, an orphaned version is finished without a write to its tenant, and the
ledger of every tenant holds each acknowledged write."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.storage.embedded import EmbeddedMongo, free_port
from tests.faults.test_orphaned_history import DATABASE, leave_orphan, wait_for_roll_forward
from tests.full_disk import SmallDisk, small_disk
from tests.gql.test_change_feed_recovery import STORE_KEY
from tests.gql.test_configuration_changed import new_tenant
from tests.ledger import check_ledger
from tests.processes import GatewayProcess

TENANTS = 4
ATTEMPTS_WHILE_FULL = 6
# Every value written carries it: it must never reach the gateway's log.
MARKER = f"MARKER{uuid.uuid4().hex[:10]}"
READY_AGAIN_WITHIN_S = 60
# Denials a full disk may still store in pages its database already holds (see below).
DENIALS_UNTIL_UNSTORED = 2000


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture
def database(disk: SmallDisk) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(disk.path / "database", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        tmp_path / "gateway", EHRGW_MONGODB_URL=database.url, EHRGW_DATABASE=DATABASE
    )
    yield gateway
    gateway.stop()


class Writer:
    """One tenant's writes, one after another, each on the version last acknowledged."""

    def __init__(self, gateway: GatewayProcess, tenant_id: str) -> None:
        self.gateway = gateway
        self.tenant_id = tenant_id
        self.version = 1  # new_tenant stored version 1
        self.acknowledged: dict[int, str] = {}
        self.errors: list[dict[str, Any]] = []
        self.attempts = 0

    def write(self) -> bool:
        """One write; whether it was saved."""
        self.attempts += 1
        value = f"{MARKER}-{self.tenant_id}-{self.attempts}"
        variables = {"tenantId": self.tenant_id, "key": value, "expectedVersion": self.version}
        response = httpx.post(
            f"{self.gateway.url}/graphql",
            json={"query": STORE_KEY, "variables": variables},
            headers={"authorization": f"Bearer {self.gateway.token}"},
            timeout=30,
        )
        body: dict[str, Any] = response.json()
        if "errors" in body:
            self.errors += body["errors"]
            return False
        result = body["data"]["updateEhrSettings"]
        assert result["__typename"] == "SettingsSaved", result
        self.version = result["settings"]["version"]
        self.acknowledged[self.version] = value
        return True

    def write_times(self, count: int) -> None:
        for _ in range(count):
            self.write()


def readiness(gateway: GatewayProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{gateway.url}/readyz", timeout=5)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def test_a_full_disk_is_storage_full_not_ready_and_healed_once_space_is_freed(
    disk: SmallDisk, database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    writers = [Writer(gateway, new_tenant(gateway)) for _ in range(TENANTS)]
    for writer in writers:
        assert writer.write() and writer.write()
    assert readiness(gateway)[0] == 200

    disk.fill()
    with ThreadPoolExecutor(TENANTS) as pool:
        list(pool.map(lambda writer: writer.write_times(ATTEMPTS_WHILE_FULL), writers))

    errors = [error for writer in writers for error in writer.errors]
    assert errors, "no write failed on a full disk"
    codes = {error["extensions"]["code"] for error in errors}
    assert codes == {"STORAGE_FULL"}, errors
    for error in errors:
        assert "no space left" in error["message"], error
        assert "operator must free space" in error["message"], error
        assert "retry shortly" not in error["message"], error
    print(f"{len(errors)} of {TENANTS * ATTEMPTS_WHILE_FULL} writes refused for space")

    status, body = readiness(gateway)
    assert status == 503, body
    assert "writes failing: storage full" in body["problems"], body

    printed = gateway.printed()
    assert MARKER not in printed, "a value written reached the gateway's log"
    failed = [writer for writer in writers if writer.errors]
    for writer in failed:
        assert f"of tenant {writer.tenant_id} version" in printed
    assert "insert history of tenant" in printed
    assert "internal error" not in printed

    disk.free()
    started = time.monotonic()
    while readiness(gateway)[0] != 200:
        assert time.monotonic() - started < READY_AGAIN_WITHIN_S, readiness(gateway)
        time.sleep(0.2)
    print(f"ready again {time.monotonic() - started:.1f}s after space was freed")

    for writer in writers:
        assert writer.write(), writer.errors[-1]
    # A replica died after its commit point meanwhile: the gateway finishes its version.
    orphaned = writers[0]
    value = f"{MARKER}-orphan"
    version = leave_orphan(database.url, orphaned.tenant_id, gateway.data_dir, value)
    orphaned.acknowledged[version] = value
    wait_for_roll_forward(database.url, orphaned.tenant_id, version)

    for writer in writers:
        check_ledger(database.url, DATABASE, writer.tenant_id, writer.acknowledged)
    assert MARKER not in gateway.printed()


def test_a_refused_write_on_a_full_disk_is_still_forbidden(
    disk: SmallDisk, gateway: GatewayProcess
) -> None:
    tenant_id = new_tenant(gateway)
    viewer = dev_tokens.mint(
        gateway.data_dir, tenants=[tenant_id], roles=("viewer",), subject="a-viewer"
    )

    disk.fill()
    # SQLite reuses its write-ahead log from the start after a checkpoint, into pages the file
    # already holds: the first denials may still be stored. Every one must be refused; denials go
    # on until the database has no room left for one.
    for attempt in range(1, DENIALS_UNTIL_UNSTORED + 1):
        response = httpx.post(
            f"{gateway.url}/graphql",
            json={
                "query": STORE_KEY,
                "variables": {"tenantId": tenant_id, "key": f"never-{attempt}"},
            },
            headers={"authorization": f"Bearer {viewer}"},
            timeout=30,
        )
        body: dict[str, Any] = response.json()
        codes = [error["extensions"]["code"] for error in body.get("errors", [])]
        assert codes == ["FORBIDDEN"], body
        if "not in the audit log" in gateway.printed():
            break
    disk.free()

    printed = gateway.printed()
    assert "denied: updateEhrSettings by a-viewer" in printed
    assert "not in the audit log" in printed, f"{attempt} denials all stored on a full disk"
    print(f"denial {attempt} was the first the full disk could not store; it was still refused")
