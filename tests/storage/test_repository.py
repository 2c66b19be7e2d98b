"""SettingsRepository against the real database server: compare-and-set, history, recovery."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.storage.chain import history_link
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import HISTORY, SETTINGS, Conflict, SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SettingsRepository]:
    client = connect(database_url)
    repository = SettingsRepository(client, TEST_DATABASE, ChainKeys(os.urandom(32)))
    await repository.prepare()
    yield repository
    await client.close()


async def _save(repository: SettingsRepository, settings: TenantSettings, base: int) -> object:
    return await repository.save(
        settings, base_version=base, actor="test", changed_blocks=[SettingsBlock.PROVIDER],
        changed_paths=["provider"],
    )  # fmt: skip


async def test_concurrent_saves_on_one_version_have_exactly_one_winner(
    repository: SettingsRepository,
) -> None:
    t1 = f"t1-{uuid.uuid4().hex[:8]}"
    tenant = TenantSettings(tenant_id=t1, provider=EhrProvider.EPIC)
    assert isinstance(await _save(repository, tenant, 0), TenantSettings)
    providers = [EhrProvider.ATHENA, EhrProvider.CERNER, EhrProvider.ELLKAY] * 7
    results = await asyncio.gather(
        *(_save(repository, tenant.model_copy(update={"provider": p}), 1) for p in providers)
    )
    winners = [result for result in results if isinstance(result, TenantSettings)]
    assert len(winners) == 1
    assert [result for result in results if not isinstance(result, TenantSettings)] == [
        Conflict(2)
    ] * 20
    stored = await repository.get(t1)
    assert stored is not None and stored.provider == winners[0].provider
    entries, more = await repository.history(t1, before=None, limit=10)
    assert [entry.version for entry in entries] == [2, 1]
    assert not more


async def test_a_write_interrupted_after_its_history_entry_is_rolled_forward(
    repository: SettingsRepository,
) -> None:
    t2 = f"t2-{uuid.uuid4().hex[:8]}"
    tenant = TenantSettings(tenant_id=t2, provider=EhrProvider.EPIC)
    saved = await _save(repository, tenant, 0)
    assert isinstance(saved, TenantSettings)
    # Simulate a process dying between its two steps: history has version 2, the document not.
    database = repository._db
    orphan = await database[HISTORY].find_one({"tenantId": t2, "version": 1})
    assert orphan is not None
    orphan.pop("_id")
    orphan["version"] = 2
    orphan["settings"] = {**orphan["settings"], "version": 2, "provider": "CERNER"}
    # Chained as its writer (a gateway holding the key) would have: a forged one is refused.
    orphan["chain"] = history_link(orphan, orphan["chain"]["hash"], repository.chain)
    await database[HISTORY].insert_one(orphan)
    assert (await database[SETTINGS].find_one({"_id": t2}))["version"] == 1  # type: ignore[index]

    late = await _save(repository, tenant.model_copy(update={"provider": EhrProvider.ATHENA}), 1)
    assert late == Conflict(2)
    recovered = await repository.get(t2)
    assert recovered is not None
    assert (recovered.version, recovered.provider) == (2, EhrProvider.CERNER)


async def test_history_entries_are_unique_per_tenant_and_version(
    repository: SettingsRepository,
) -> None:
    from pymongo.errors import DuplicateKeyError

    history = repository._db[HISTORY]
    first, second = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    await history.insert_one({"tenantId": first, "version": 1})
    with pytest.raises(DuplicateKeyError):
        await history.insert_one({"tenantId": first, "version": 1})
    await history.insert_one({"tenantId": second, "version": 1})


async def test_a_version_stored_here_reads_back_by_id_as_the_database_holds_it(
    repository: SettingsRepository,
) -> None:
    # The change feed asks for each version's entry by id; those this process stored come from
    # what it inserted, once, and must be what a read from the database gives.
    tenant_id = f"t3-{uuid.uuid4().hex[:8]}"
    settings = TenantSettings(
        tenant_id=tenant_id,
        provider=EhrProvider.EPIC,
        providers={EhrProvider.EPIC: ProviderSettings(ehr={"context": "Scheduling"})},
    )
    assert isinstance(await _save(repository, settings, 0), TenantSettings)
    row = await repository._db[HISTORY].find_one({"tenantId": tenant_id, "version": 1})
    assert row is not None
    first = await repository.history_entry_by_id(row["_id"])
    again = await repository.history_entry_by_id(row["_id"])
    assert first is not None and first == again
    assert (first.version, first.actor, first.settings.provider) == (1, "test", EhrProvider.EPIC)


async def test_concurrent_saves_to_many_tenants_each_get_their_own_outcome(
    repository: SettingsRepository,
) -> None:
    # Saves that are ready together go to the database together; each still wins or loses on
    # its own tenant's version, and every stored version has its document and audit entry.
    tenants = [f"t4-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    first = await asyncio.gather(
        *(
            _save(repository, TenantSettings(tenant_id=t, provider=EhrProvider.EPIC), 0)
            for t in tenants
        )
    )
    assert all(isinstance(result, TenantSettings) for result in first)
    # Per tenant: two writers on version 1 (one wins) and one on a version already taken.
    racing = [
        _save(repository, TenantSettings(tenant_id=t, provider=provider), base)
        for t in tenants
        for provider, base in (
            (EhrProvider.CERNER, 1),
            (EhrProvider.ATHENA, 1),
            (EhrProvider.ELLKAY, 0),
        )
    ]
    results = await asyncio.gather(*racing)
    for index, tenant_id in enumerate(tenants):
        cerner, athena, late = results[3 * index : 3 * index + 3]
        winners = [r for r in (cerner, athena) if isinstance(r, TenantSettings)]
        assert len(winners) == 1 and winners[0].version == 2
        assert Conflict(2) in (cerner, athena)
        # Refused; it reports version 1 or 2, depending on when it looked.
        assert late in (Conflict(1), Conflict(2))
        stored = await repository.get(tenant_id)
        assert stored is not None
        assert (stored.version, stored.provider) == (2, winners[0].provider)
        entries, _ = await repository.history(tenant_id, before=None, limit=10)
        assert [entry.version for entry in entries] == [2, 1]
        audit, _ = await repository.audit.page(tenant_id, 10, None)
        assert sorted(entry.version or 0 for entry in audit) == [1, 2]
