"""Attack on the change-feed fix's promise that a replica never serves stale settings without
/readyz saying so (README "Faults"; ehr_gateway/runtime/settings_cache.py). A write whose history
entry is committed but whose document replace is held up on its way to the database (a proxy
holds it, as a congested link would; it is not cut, so the driver sees no server going away) is
answered SettingsSaved with the new version, and the change feed announces it; the replica's
own reads then serve the version before it until a roll-forward gets through, while /readyz
answers 200 "ready". A client that saved version 2 reads version 1 back, from the replica that
told it 2. (With the connection cut instead, /readyz does say "change feed: down".)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ehr_gateway.resolvers.tenant_directory import OVERLAP_S
from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.database_proxy import HeldReplaces, listening
from tests.faults.test_idempotent_retries import ENCRYPTION_KEY, new_tenant, post, store_raw
from tests.processes import GatewayProcess

DATABASE = "stale_read_after_saved"
WITHIN_S = 60
READ = """
query Read($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }
"""


@pytest.fixture
async def proxy(database: EmbeddedMongo) -> AsyncIterator[HeldReplaces]:
    async with listening(HeldReplaces(database.port, OVERLAP_S + 15)) as holding:
        yield holding


@pytest.fixture
async def replica(proxy: HeldReplaces, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await asyncio.to_thread(
        GatewayProcess,
        tmp_path / "replica",
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=proxy.url,
        EHRGW_DATABASE=DATABASE,
    )
    yield process
    await asyncio.to_thread(process.stop, 5)


async def test_a_replica_that_answered_saved_reads_that_version_or_says_it_is_not_ready(
    proxy: HeldReplaces, replica: GatewayProcess
) -> None:
    tenant = await asyncio.to_thread(new_tenant, replica)
    proxy.tenant = tenant.encode()

    saved = await store_raw(replica, tenant, "late", "late-key")
    await asyncio.wait_for(proxy.held.wait(), WITHIN_S)
    assert saved["data"]["updateEhrSettings"]["settings"]["version"] == 2, saved

    read = await post(replica.url, replica.token, READ, tenantId=tenant)
    async with httpx.AsyncClient() as client:
        ready = await client.get(f"{replica.url}/readyz")
    version = read["data"]["integrationSettings"]["version"]
    assert version == 2 or ready.status_code != 200, (version, ready.text)
