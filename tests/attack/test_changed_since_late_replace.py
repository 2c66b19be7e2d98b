"""Attack on last session's changedSince fix (storage/directory.py: a row is listed when its
document is *sent*; pollers overlap by 30 s). The module's premise is that "what remains
between the stamp and the row becoming visible is one database round trip, bounded by the
write's deadline (EHRGW_DB_TIMEOUT_MS)". The deadline bounds how long the gateway waits, not
when the database applies what it was sent: a replace held up in the network (a congested or
partitioned link, TCP retransmits) past the deadline still lands when it arrives, with the
listing time stamped before it was sent. The writer gave up on it (the version is orphaned, its
roll-forwards held up behind it alike) and nothing stamps the row again, since every later
roll-forward finds the document already at that version.

Here a proxy holds every replace of one tenant's settings document for longer than the overlap
and then delivers it. Meanwhile another tenant changes and a dashboard following the schema's
advice passes it; when the held replace lands, the tenant's new version is listed at a time
before the dashboard's next changedSince, and the dashboard never sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ehr_gateway.resolvers.tenant_directory import OVERLAP_S
from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.database_proxy import Connection, DatabaseProxy, listening
from tests.faults.test_idempotent_retries import ENCRYPTION_KEY, new_tenant, store_raw
from tests.gql.test_tenants_changed_since_polling import REPLACE, Dashboard, listed_version
from tests.processes import GatewayProcess

DATABASE = "changed_since_late_replace"
HOLD_S = OVERLAP_S + 15
WITHIN_S = 60


class HeldReplaces(DatabaseProxy):
    """While a tenant is named, holds each replace of its settings document for ``HOLD_S``
    seconds, then delivers it: late, not lost."""

    def __init__(self, database_port: int) -> None:
        super().__init__(database_port)
        self.tenant: bytes | None = None
        self.held = asyncio.Event()

    async def forward(self, chunk: bytes, connection: Connection) -> bool:
        if self.tenant is not None and REPLACE in chunk and self.tenant in chunk:
            self.held.set()
            try:
                await asyncio.sleep(HOLD_S)
            except asyncio.CancelledError:
                return False  # the test is over and its proxy closing: nothing to deliver to
        return True


@pytest.fixture
async def proxy(database: EmbeddedMongo) -> AsyncIterator[HeldReplaces]:
    async with listening(HeldReplaces(database.port)) as holding:
        yield holding


def _replica(proxy: HeldReplaces, data_dir: Path) -> GatewayProcess:
    return GatewayProcess(
        data_dir,
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=proxy.url,
        EHRGW_DATABASE=DATABASE,
    )


@pytest.fixture
async def replicas(
    proxy: HeldReplaces, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    first = await asyncio.to_thread(_replica, proxy, tmp_path / "first")
    second = await asyncio.to_thread(_replica, proxy, tmp_path / "second")
    yield first, second
    await asyncio.to_thread(first.stop, 5)
    await asyncio.to_thread(second.stop, 5)


async def test_a_dashboard_following_the_advice_sees_a_replace_that_landed_late(
    proxy: HeldReplaces, replicas: tuple[GatewayProcess, GatewayProcess]
) -> None:
    first, second = replicas
    held = await asyncio.to_thread(new_tenant, first)
    other = await asyncio.to_thread(new_tenant, first)
    dashboard = Dashboard(second)
    assert await dashboard.poll() == {held: 1, other: 1}

    proxy.tenant = held.encode()
    written = time.monotonic()
    await store_raw(first, held, "late", "late-key")
    await asyncio.wait_for(proxy.held.wait(), WITHIN_S)

    # Past the overlap, another tenant changes and the dashboard passes it.
    await asyncio.sleep(max(0.0, written + OVERLAP_S + 5 - time.monotonic()))
    quick = await store_raw(second, other, "quick", "quick-key")
    assert quick["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved", quick
    assert await dashboard.poll() == {other: 2}

    # The held replace lands.
    deadline = time.monotonic() + WITHIN_S
    while await listed_version(second, held) != 2:
        assert time.monotonic() < deadline, "the version was never listed"
        await asyncio.sleep(0.5)
    proxy.tenant = None

    since = dashboard.since
    assert await dashboard.poll() == {held: 2}, f"polled since {since}"
