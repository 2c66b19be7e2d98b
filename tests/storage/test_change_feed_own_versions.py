"""The versions this process stores reach its change feed's subscribers from what it inserted:
the feed reads back from the database only versions other processes wrote. Writers that save
together can see their events arrive before their inserts' answers; those versions are still
this process's own."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.storage.change_feed import ChangeFeed
from ehr_gateway.storage.repository import HISTORY, HistoryEntry, SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE

WRITERS = 16
SAVES_EACH = 8
# Not a timing assertion: how long the test waits for the feed before it fails instead of hanging.
HANG_GUARD_S = 60


class HistoryReadsById(monitoring.CommandListener):
    """Counts the finds of one history entry by its id: how the feed reads an entry back."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        by_id = set(command.get("filter", {})) == {"_id"}
        if event.command_name == "find" and command.get("find") == HISTORY and by_id:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def reads_by_id() -> HistoryReadsById:
    return HistoryReadsById()


@pytest.fixture
async def repository(
    database_url: str, reads_by_id: HistoryReadsById
) -> AsyncIterator[SettingsRepository]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        database_url, tz_aware=True, event_listeners=[reads_by_id]
    )
    repository = SettingsRepository(client, TEST_DATABASE, ChainKeys(os.urandom(32)))
    await repository.prepare()
    yield repository
    await client.close()


async def save_in_turn(repository: SettingsRepository, tenant_id: str) -> None:
    for version in range(1, SAVES_EACH + 1):
        settings = TenantSettings(
            tenant_id=tenant_id,
            provider=EhrProvider.EPIC,
            providers={EhrProvider.EPIC: ProviderSettings(ehr={"context": f"v{version}"})},
        )
        stored = await repository.save(
            settings, base_version=version - 1, actor="test",
            changed_blocks=[SettingsBlock.EHR], changed_paths=["providers.EPIC.ehr.context"],
        )  # fmt: skip
        assert isinstance(stored, TenantSettings) and stored.version == version


async def test_versions_saved_together_are_announced_without_reading_them_back(
    repository: SettingsRepository, reads_by_id: HistoryReadsById
) -> None:
    published: list[HistoryEntry] = []
    all_arrived = asyncio.Event()
    tenants = [f"own-{uuid.uuid4().hex[:8]}" for _ in range(WRITERS)]

    def publish(entry: HistoryEntry) -> None:
        if entry.tenant_id in tenants:
            published.append(entry)
            if len(published) == WRITERS * SAVES_EACH:
                all_arrived.set()

    feed = ChangeFeed(repository, publish)
    feed.start()
    try:
        await asyncio.wait_for(feed.running.wait(), HANG_GUARD_S)
        await asyncio.gather(*(save_in_turn(repository, tenant) for tenant in tenants))
        await asyncio.wait_for(all_arrived.wait(), HANG_GUARD_S)
    finally:
        await feed.stop()

    assert sorted((entry.tenant_id, entry.version) for entry in published) == sorted(
        (tenant, version) for tenant in tenants for version in range(1, SAVES_EACH + 1)
    )
    assert reads_by_id.count == 0
