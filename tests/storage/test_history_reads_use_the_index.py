"""Every find a history or audit page makes is answered from the tenant's index, on the database
the tests run against: the database's own plan of each find the repository sent (captured as the
driver sends it), not its timing. On the embedded server a bare ``{"tenantId": id}`` was planned
as a scan of the whole collection (every tenant's entries read for a page of one), so a page
cost as much as the collection held."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.repository import HISTORY, SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE


class Finds(monitoring.CommandListener):
    """The find commands the client sends, as sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def watched(
    database_url: str,
) -> AsyncIterator[tuple[SettingsRepository, Finds, AsyncMongoClient[dict[str, Any]]]]:
    finds = Finds()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        database_url, tz_aware=True, event_listeners=[finds]
    )
    repository = SettingsRepository(client, TEST_DATABASE, ChainKeys(os.urandom(32)))
    await repository.prepare()
    yield repository, finds, client
    await client.close()


async def _plan(repository: SettingsRepository, find: dict[str, Any]) -> str:
    """The database's plan of ``find``, as text."""
    command = {key: find[key] for key in ("find", "filter", "sort", "limit") if key in find}
    explained = await repository.database.command("explain", command)
    return str(explained["queryPlanner"]["winningPlan"])


def _scans_collection(plan: str, collection: str) -> bool:
    # MongoDB names a collection scan COLLSCAN; the embedded server (SQLite) "SCAN <table>",
    # where an index read is "SEARCH <table> USING INDEX".
    return "COLLSCAN" in plan or f"SCAN {collection}" in plan


async def test_history_and_audit_pages_read_from_the_tenants_index(
    watched: tuple[SettingsRepository, Finds, AsyncMongoClient[dict[str, Any]]],
) -> None:
    repository, finds, client = watched
    tenant_id = f"indexed-{uuid.uuid4().hex[:8]}"
    settings = TenantSettings(tenant_id=tenant_id, provider=EhrProvider.EPIC)
    for base in range(4):
        saved = await repository.save(
            settings, base_version=base, actor="test", changed_blocks=[SettingsBlock.PROVIDER],
            changed_paths=["provider"],
        )  # fmt: skip
        assert isinstance(saved, TenantSettings)
        settings = saved

    finds.sent.clear()
    newest, _ = await repository.history(tenant_id, before=None, limit=2)
    await repository.history(tenant_id, before=newest[-1].version, limit=2)
    assert await repository.version(tenant_id, 2) is not None
    await repository.versions_page(tenant_id, 1, before=4, limit=10)
    entries, _ = await repository.audit.page(tenant_id, 2, None)
    await repository.audit.page(tenant_id, 2, entries[-1].id)
    # A process that has not appended to the tenant yet reads the audit log's head first.
    fresh = SettingsRepository(client, TEST_DATABASE, repository.chain)
    await fresh.audit.record_denial(
        tenant_id=tenant_id, at=datetime.now(UTC), subject="caller", roles=["viewer"],
        operation="updateEhr", permission="WRITE", request_id="req-index",
    )  # fmt: skip

    pages = [find for find in finds.sent if find["find"] in (HISTORY, AUDIT)]
    assert len(pages) >= 8
    for find in pages:
        plan = await _plan(repository, find)
        assert not _scans_collection(plan, find["find"]), (find["filter"], plan)
