"""An audit entry whose sort key ``order`` a database writer left out or retyped (null, a
number): the text range that pages the audit log and sweeps it for unchained entries never
reads it, while a page over the whole log does. Verification names it, every page that holds it
(or starts from it) is refused as tampered, and the find that looks for it is planned on the
tenant's index."""

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
from ehr_gateway.storage.audit import AUDIT, AuditEntryTampered
from ehr_gateway.storage.integrity import Reason, verify_tenant
from ehr_gateway.storage.repository import SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE

UNORDERED: dict[str, dict[str, Any]] = {
    "no order": {},
    "a null order": {"order": None},
    "a numeric order": {"order": 99},
}


class Finds(monitoring.CommandListener):
    """The find commands on the audit log the client sends, as sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == AUDIT:
            self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def written(
    database_url: str,
) -> AsyncIterator[tuple[SettingsRepository, Finds, str]]:
    """A tenant a gateway chained from version 1, with three versions (three audit entries)."""
    finds = Finds()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        database_url, tz_aware=True, event_listeners=[finds]
    )
    repository = SettingsRepository(client, TEST_DATABASE, ChainKeys(os.urandom(32)))
    await repository.prepare()
    tenant_id = f"unordered-{uuid.uuid4().hex[:8]}"
    settings = TenantSettings(tenant_id=tenant_id, provider=EhrProvider.EPIC)
    for base in range(3):
        saved = await repository.save(
            settings, base_version=base, actor="test", changed_blocks=[SettingsBlock.PROVIDER],
            changed_paths=["provider"],
        )  # fmt: skip
        assert isinstance(saved, TenantSettings)
        settings = saved
    yield repository, finds, tenant_id
    await client.close()


async def _forge(repository: SettingsRepository, tenant_id: str, order: dict[str, Any]) -> str:
    """An entry of the shape a gateway writes, without sequence number, chain or text order."""
    entry_id = f"{tenant_id}:d{uuid.uuid4().hex}"
    await repository.database[AUDIT].insert_one(
        {
            "_id": entry_id, "tenantId": tenant_id, "at": datetime.now(UTC),
            "subject": "forger", "roles": [], "operation": "rotateSecrets", "outcome": "SAVED",
            "version": None, "changes": [], "requestId": "", **order,
        }
    )  # fmt: skip
    return entry_id


@pytest.mark.parametrize("order", list(UNORDERED))
async def test_verification_names_an_unchained_entry_without_a_text_order(
    written: tuple[SettingsRepository, Finds, str], order: str
) -> None:
    repository, _, tenant_id = written
    before = await verify_tenant(repository.database, repository.chain, tenant_id)
    assert before.intact, before

    forged = await _forge(repository, tenant_id, UNORDERED[order])
    after = await verify_tenant(repository.database, repository.chain, tenant_id)

    assert not after.intact
    assert after.audit.broken is not None, after
    assert after.audit.broken.reason is Reason.UNCHAINED
    assert after.audit.broken.entry_id == forged
    assert after.audit.checked == 3  # the chain itself verified


@pytest.mark.parametrize("order", list(UNORDERED))
async def test_every_page_over_or_from_an_entry_without_a_text_order_is_tampered(
    written: tuple[SettingsRepository, Finds, str], order: str
) -> None:
    repository, _, tenant_id = written
    newest, more = await repository.audit.page(tenant_id, 1, None)
    assert more
    forged = await _forge(repository, tenant_id, UNORDERED[order])

    # The first page over the whole log holds it (it sorts after every text order).
    with pytest.raises(AuditEntryTampered):
        await repository.audit.page(tenant_id, 10, None)
    # A page of the newest entries alone does not.
    shown, _ = await repository.audit.page(tenant_id, 1, None)
    assert [entry.id for entry in shown] == [newest[0].id]
    # A later page that reaches it holds it, as the first page does.
    with pytest.raises(AuditEntryTampered):
        await repository.audit.page(tenant_id, 10, newest[0].id)
    # A page before the entries with text order ends short of it.
    older, _ = await repository.audit.page(tenant_id, 1, newest[0].id)
    assert len(older) == 1 and older[0].id != forged
    # A page from it has no place to start.
    with pytest.raises(AuditEntryTampered):
        await repository.audit.page(tenant_id, 1, forged)


async def test_the_finds_for_entries_without_a_text_order_read_the_tenants_index(
    written: tuple[SettingsRepository, Finds, str],
) -> None:
    repository, finds, tenant_id = written
    newest, _ = await repository.audit.page(tenant_id, 1, None)
    finds.sent.clear()
    await verify_tenant(repository.database, repository.chain, tenant_id)
    await repository.audit.page(tenant_id, 10, newest[0].id)  # the last page

    # The lowest unchained entry (verification: none, so not the highest either) and the
    # lowest entry of the log (the last page).
    ends = [
        find for find in finds.sent if find.get("limit") == 1 and "order" in find.get("sort", {})
    ]
    assert len(ends) == 2, [(find["filter"], find.get("sort")) for find in finds.sent]
    for find in ends:
        command = {key: find[key] for key in ("find", "filter", "sort", "limit") if key in find}
        explained = await repository.database.command("explain", command)
        plan = str(explained["queryPlanner"]["winningPlan"])
        # MongoDB names a collection scan COLLSCAN; the embedded server "SCAN <table>".
        assert "COLLSCAN" not in plan and f"SCAN {AUDIT}" not in plan, (find["filter"], plan)
