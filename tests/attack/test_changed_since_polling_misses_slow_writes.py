"""Attack (tenants directory, ``changedSince``): a dashboard polls as the schema says ("Poll
with the last row's changedAt") and never sees a tenant's change.

``changedAt`` is the writer's clock when the write began (storage.repository.save takes ``now``
before the chain read, the history insert and the document replace), not when the row became
visible. A write that takes a while to land (a batch behind a slow database, another replica,
a version rolled forward seconds later after a timeout) shows up with a ``changedAt`` earlier
than rows a poller has already passed; the poller's next ``changedSince`` is past it, and the
change is missed until the tenant changes again. Under load, with three replicas and writes
passing their deadline, a poller missed the final version of 5 to 12 of 20 tenants per
20-second run.

Here the first replica's history insert is held back 3 s by a proxy; meanwhile the second
replica stores another tenant's change and the poller reads it; then the held write lands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.faults.test_idempotent_retries import (  # noqa: F401 (fixture)
    DATABASE,
    ENCRYPTION_KEY,
    database,
    new_tenant,
    post,
    store_raw,
)
from tests.processes import GatewayProcess

CHANGED_SINCE = """
query ChangedSince($since: DateTime, $after: String) {
  tenants(changedSince: $since, after: $after, first: 200) {
    items { tenantId version changedAt }
    pageInfo { endCursor hasNextPage }
  }
}
"""
HOLD_S = 3.0


class HeldInsert:
    """A proxy that, once armed, holds the next history insert back ``HOLD_S`` seconds."""

    def __init__(self, database_port: int) -> None:
        self.database_port = database_port
        self.armed = False
        self.port = 0

    async def serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        db_in, db_out = await asyncio.open_connection("127.0.0.1", self.database_port)

        async def requests() -> None:
            while chunk := await client_in.read(1 << 16):
                if self.armed and b"insert" in chunk and b"tenant_settings_history" in chunk:
                    self.armed = False
                    await asyncio.sleep(HOLD_S)
                db_out.write(chunk)
                await db_out.drain()

        async def replies() -> None:
            while chunk := await db_in.read(1 << 16):
                client_out.write(chunk)
                await client_out.drain()

        try:
            await asyncio.gather(requests(), replies())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            db_out.close()
            client_out.close()


@pytest.fixture
async def held_insert(database: EmbeddedMongo) -> AsyncIterator[HeldInsert]:  # noqa: F811
    proxy = HeldInsert(database.port)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    async with server:
        yield proxy


@pytest.fixture
def direct(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:  # noqa: F811
    running = GatewayProcess(
        tmp_path / "direct",
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE=DATABASE,
    )
    yield running
    running.stop(5)


async def poll(gateway: GatewayProcess, since: str) -> tuple[dict[str, int], str]:
    """One poll as a dashboard makes it: every page since ``since``; the rows' versions by
    tenant, and the next ``since`` (the last row's changedAt)."""
    seen: dict[str, int] = {}
    after: str | None = None
    while True:
        body: dict[str, Any] = await post(
            gateway.url, gateway.token, CHANGED_SINCE, since=since, after=after
        )
        page = body["data"]["tenants"]
        for row in page["items"]:
            seen[row["tenantId"]] = row["version"]
            since = row["changedAt"]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, since
        after = page["pageInfo"]["endCursor"]


async def test_a_poller_following_changed_at_sees_every_tenants_latest_version(
    held_insert: HeldInsert, direct: GatewayProcess, tmp_path: Path
) -> None:
    slow = await asyncio.to_thread(
        GatewayProcess,
        tmp_path / "slow",
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=f"mongodb://127.0.0.1:{held_insert.port}/?directConnection=true",
        EHRGW_DATABASE=DATABASE,
        EHRGW_DB_TIMEOUT_MS="10000",
    )
    try:
        held_tenant = await asyncio.to_thread(new_tenant, direct)
        other_tenant = await asyncio.to_thread(new_tenant, direct)
        seen, since = await poll(direct, "2000-01-01T00:00:00Z")
        assert seen[held_tenant] == 1 and seen[other_tenant] == 1

        held_insert.armed = True
        held = asyncio.create_task(store_raw(slow, held_tenant, "held", "held-key"))
        await asyncio.sleep(1)  # the held write has its changedAt, and waits
        quick = await store_raw(direct, other_tenant, "quick", "quick-key")
        assert quick["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved", quick
        found, since = await poll(direct, since)
        assert found.get(other_tenant) == 2
        landed = await held
        assert landed["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved", landed

        later, _ = await poll(direct, since)
        assert later.get(held_tenant) == 2, (found, later)
    finally:
        await asyncio.to_thread(slow.stop, 5)
