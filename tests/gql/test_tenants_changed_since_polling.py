"""A dashboard follows the tenant directory with `changedSince` as the schema advises (the last
row's changedAt minus the stated overlap, dropping rows it already has) and sees every tenant's
newest version, even one that becomes visible long after its write began.

Here a write's document replace is lost (a proxy between both replicas and the database cuts the
connection that carries it, and every roll-forward's after it) for longer than the overlap;
meanwhile another tenant changes and the dashboard passes it. When the database takes the
replace again, a roll-forward completes the version: it is listed when it became visible, so the
dashboard's next poll has it. Listed by when its write began, it would sort behind rows the
dashboard had passed, and be missed until the tenant changed again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ehr_gateway.resolvers.tenant_directory import OVERLAP_S
from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.database_proxy import (
    REPLACE,
    Connection,
    DatabaseProxy,
    HeldReplaces,
    listening,
    two_replicas_behind,
)
from tests.faults.test_idempotent_retries import ENCRYPTION_KEY, new_tenant, post, store_raw
from tests.processes import GatewayProcess

DATABASE = "changed_since_polling"
REPLICA_ENV = {"EHRGW_ENCRYPTION_KEY": ENCRYPTION_KEY, "EHRGW_DATABASE": DATABASE}
CHANGED_SINCE = """
query ChangedSince($since: DateTime, $after: String) {
  tenants(changedSince: $since, after: $after, first: 200) {
    items { tenantId version changedAt }
    pageInfo { endCursor hasNextPage }
  }
}
"""
BY_ID = """
query Tenants { tenants(first: 200) { items { tenantId version } } }
"""
WITHIN_S = 60  # generous: the machine is shared, and roll-forwards back off up to 10 s
# Longer than the overlap: a replace held this long lands with a listing time a poller passed.
HOLD_S = OVERLAP_S + 15


class LostReplaces(DatabaseProxy):
    """While a tenant is named, cuts every connection that sends a replace of that tenant's
    settings document, before it reaches the database."""

    def __init__(self, database_port: int) -> None:
        super().__init__(database_port)
        self.tenant: bytes | None = None
        self.cut = asyncio.Event()  # at least one replace was lost

    async def forward(self, chunk: bytes, connection: Connection) -> bool:
        if self.tenant is not None and REPLACE in chunk and self.tenant in chunk:
            self.cut.set()
            return False
        return True


@pytest.fixture
async def proxy(database: EmbeddedMongo) -> AsyncIterator[LostReplaces]:
    async with listening(LostReplaces(database.port)) as lossy:
        yield lossy


@pytest.fixture
async def replicas(
    proxy: LostReplaces, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    async with two_replicas_behind(proxy, tmp_path, **REPLICA_ENV) as both:
        yield both


class Dashboard:
    """Follows the directory as the schema of `tenants(changedSince:)` says."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.since = "2000-01-01T00:00:00Z"
        self.seen: set[tuple[str, int]] = set()

    async def poll(self) -> dict[str, int]:
        """Every page since the last poll's cursor; the rows not seen before."""
        new: dict[str, int] = {}
        after: str | None = None
        last: str | None = None
        while True:
            body: dict[str, Any] = await post(
                self.gateway.url,
                self.gateway.token,
                CHANGED_SINCE,
                since=self.since,
                after=after,
            )
            assert "errors" not in body, body
            page = body["data"]["tenants"]
            for row in page["items"]:
                key = (row["tenantId"], row["version"])
                if key not in self.seen:
                    self.seen.add(key)
                    new[row["tenantId"]] = row["version"]
                last = row["changedAt"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        if last is not None:
            moment = datetime.fromisoformat(last) - timedelta(seconds=OVERLAP_S)
            self.since = moment.isoformat()
        return new


async def listed_version(gateway: GatewayProcess, tenant_id: str) -> int | None:
    body = await post(gateway.url, gateway.token, BY_ID)
    assert "errors" not in body, body
    versions = {row["tenantId"]: row["version"] for row in body["data"]["tenants"]["items"]}
    return versions.get(tenant_id)


async def test_a_dashboard_following_the_advice_sees_a_version_completed_late(
    proxy: LostReplaces, replicas: tuple[GatewayProcess, GatewayProcess]
) -> None:
    first, second = replicas
    held = await asyncio.to_thread(new_tenant, first)
    other = await asyncio.to_thread(new_tenant, first)
    dashboard = Dashboard(second)
    assert await dashboard.poll() == {held: 1, other: 1}

    proxy.tenant = held.encode()
    written = time.monotonic()
    # Its version is committed (the history entry), its document not: the client may be told
    # either that it was saved or that it may have been.
    await store_raw(first, held, "late", "late-key")
    await asyncio.wait_for(proxy.cut.wait(), WITHIN_S)
    assert await listed_version(second, held) == 1

    # Later than the overlap, another tenant changes, and the dashboard passes it.
    await asyncio.sleep(max(0.0, written + OVERLAP_S + 2 - time.monotonic()))
    quick = await store_raw(second, other, "quick", "quick-key")
    assert quick["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved", quick
    assert await dashboard.poll() == {other: 2}
    assert await listed_version(second, held) == 1

    proxy.tenant = None  # the database takes the replace again: a roll-forward completes it
    deadline = time.monotonic() + WITHIN_S
    while await listed_version(second, held) != 2:
        assert time.monotonic() < deadline, "the version was not completed"
        await asyncio.sleep(0.2)

    assert await dashboard.poll() == {held: 2}


@pytest.fixture
async def holding_proxy(database: EmbeddedMongo) -> AsyncIterator[HeldReplaces]:
    async with listening(HeldReplaces(database.port, HOLD_S)) as holding:
        yield holding


@pytest.fixture
async def replicas_behind_a_slow_link(
    holding_proxy: HeldReplaces, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    async with two_replicas_behind(holding_proxy, tmp_path, **REPLICA_ENV) as both:
        yield both


async def test_a_dashboard_following_the_advice_sees_a_replace_that_landed_late(
    holding_proxy: HeldReplaces,
    replicas_behind_a_slow_link: tuple[GatewayProcess, GatewayProcess],
) -> None:
    """The replace is held up on its way to the database past the write's deadline and the
    overlap, then lands (with the listing time its writer stamped). The writer gave up on it, so
    the version's roll-forward lists it again once the link recovers."""
    first, second = replicas_behind_a_slow_link
    held = await asyncio.to_thread(new_tenant, first)
    other = await asyncio.to_thread(new_tenant, first)
    dashboard = Dashboard(second)
    assert await dashboard.poll() == {held: 1, other: 1}

    holding_proxy.tenant = held.encode()
    written = time.monotonic()
    await store_raw(first, held, "late", "late-key")
    await asyncio.wait_for(holding_proxy.held.wait(), WITHIN_S)

    # Later than the overlap, another tenant changes, and the dashboard passes it.
    await asyncio.sleep(max(0.0, written + OVERLAP_S + 5 - time.monotonic()))
    quick = await store_raw(second, other, "quick", "quick-key")
    assert quick["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved", quick
    assert await dashboard.poll() == {other: 2}

    # The held replace lands, listed before the dashboard's next changedSince.
    deadline = time.monotonic() + WITHIN_S
    while await listed_version(second, held) != 2:
        assert time.monotonic() < deadline, "the held replace never landed"
        await asyncio.sleep(0.5)
    holding_proxy.tenant = None  # the link recovers

    deadline = time.monotonic() + WITHIN_S
    seen: dict[str, int] = {}
    while held not in seen:
        assert time.monotonic() < deadline, f"never listed after {dashboard.since}"
        seen.update(await dashboard.poll())
        await asyncio.sleep(0.5)
    assert seen == {held: 2}
