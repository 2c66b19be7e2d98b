"""History entries whose tenant or version a database writer gave a type no gateway writes:
named as entries that do not verify (MALFORMED), never failing the read that meets them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repair import HistoryTampered
from ehr_gateway.storage.repository import HISTORY, MALFORMED, SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SettingsRepository]:
    client = connect(database_url)
    repository = SettingsRepository(client, TEST_DATABASE, ChainKeys(os.urandom(32)))
    await repository.prepare()
    yield repository
    await client.close()


async def _three_versions(repository: SettingsRepository) -> str:
    tenant_id = f"typed-{uuid.uuid4().hex[:8]}"
    providers = [EhrProvider.EPIC, EhrProvider.CERNER, EhrProvider.ATHENA]
    for base, provider in enumerate(providers):
        saved = await repository.save(
            TenantSettings(tenant_id=tenant_id, provider=provider), base_version=base,
            actor="test", changed_blocks=[SettingsBlock.PROVIDER], changed_paths=["provider"],
        )  # fmt: skip
        assert isinstance(saved, TenantSettings)
    return tenant_id


async def test_a_page_of_versions_leaves_out_an_entry_whose_version_is_a_list(
    repository: SettingsRepository,
) -> None:
    """A list holding a number in range matches the page's range query: the page leaves it
    out, and its last version read is the newest one a gateway could have written, so the
    reader goes on from there."""
    tenant_id = await _three_versions(repository)
    await repository._db[HISTORY].insert_one({"tenantId": tenant_id, "version": [7]})

    entries, last = await repository.versions_page(tenant_id, 0)

    assert [entry.version for entry in entries] == [1, 2, 3]
    assert last == 3
    assert repository.tampered_entries == 1


@pytest.mark.parametrize(
    "version",
    ["3", None, [3], 2**31, -(2**31) - 1],
    ids=["text", "null", "list", "past GraphQL's Int", "below GraphQL's Int"],
)
async def test_history_naming_a_retyped_version_refuses_it_as_malformed(
    repository: SettingsRepository, version: Any
) -> None:
    tenant_id = await _three_versions(repository)
    await repository._db[HISTORY].update_one(
        {"tenantId": tenant_id, "version": 3}, {"$set": {"version": version}}
    )

    with pytest.raises(HistoryTampered) as refused:
        await repository.history(tenant_id, before=None, limit=10)

    assert refused.value.fault == MALFORMED
    assert refused.value.tenant_id == tenant_id


# Entries a database writer inserts, as the change feed hears of them.
FORGED_ENTRIES: dict[str, dict[str, Any]] = {
    "text version": {"tenantId": "forged-in", "version": "x"},
    "version past GraphQL's Int": {"tenantId": "forged-in", "version": 2**31},
    "null tenant": {"tenantId": None, "version": 1},
    "numeric tenant": {"tenantId": 0, "version": 1},
    "no tenant": {"version": 1},
}


@pytest.mark.parametrize("forged", list(FORGED_ENTRIES))
async def test_an_entry_fetched_by_id_without_a_text_tenant_or_numeric_version_is_dropped(
    repository: SettingsRepository, forged: str
) -> None:
    """What the change feed does with each insert it hears of: an entry that does not verify
    is left out (counted and logged once), whatever its tenant and version hold, and the feed
    goes on to the next."""
    inserted = await repository._db[HISTORY].insert_one(dict(FORGED_ENTRIES[forged]))

    assert await repository.history_entry_by_id(inserted.inserted_id) is None
    assert repository.tampered_entries == 1
