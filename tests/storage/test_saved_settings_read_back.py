"""What a save answers (the settings its writer is told, the settings cache keeps and the change
feed publishes, all one object) is what a read of the stored version gives: every block's model,
and the readiness stored with the version. A save takes over the blocks it validated before for
every block whose data it left as it was, instead of validating them again; a block whose data
changed is validated afresh."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ehr_gateway.ehr.blocks import PROVIDER_BLOCKS, ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.directory import (
    BY_CHANGE,
    DIRECTORY,
    LISTED_AT,
    ROW_SEAL,
    directory_row,
    row_fault,
)
from ehr_gateway.storage.repository import HISTORY, SETTINGS, SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE

EPIC = EhrProvider.EPIC


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SettingsRepository]:
    client = connect(database_url)
    repository = SettingsRepository(client, TEST_DATABASE, ChainKeys(os.urandom(32)))
    await repository.prepare()
    yield repository
    await client.close()


def with_blocks(settings: TenantSettings, **blocks: Any) -> TenantSettings:
    """``settings`` with some of its Epic blocks' stored data replaced (as a write does)."""
    providers = dict(settings.providers)
    providers[EPIC] = settings.provider_settings(EPIC).model_copy(update=blocks)
    return settings.model_copy(update={"providers": providers})


def validated(settings: TenantSettings) -> TenantSettings:
    """``settings`` with every Epic block validated, as the write path has them."""
    for block in PROVIDER_BLOCKS[EPIC]:
        settings.block(EPIC, block)
    return settings


async def save(repository: SettingsRepository, settings: TenantSettings) -> TenantSettings:
    saved = await repository.save(
        settings, base_version=settings.version, actor="test",
        changed_blocks=[SettingsBlock.EHR], changed_paths=["providers.EPIC.ehr"],
    )  # fmt: skip
    assert isinstance(saved, TenantSettings), saved
    return saved


async def assert_answer_is_the_read(repository: SettingsRepository, saved: TenantSettings) -> None:
    read = await repository.get(saved.tenant_id)
    assert read is not None and read == saved
    for block in PROVIDER_BLOCKS[EPIC]:
        answered, fresh = saved.block(EPIC, block), read.block(EPIC, block)
        assert answered is not None and fresh is not None
        assert type(answered) is type(fresh)
        assert answered.model_dump(mode="json") == fresh.model_dump(mode="json"), block
    stored = await repository.database[SETTINGS].find_one({"_id": saved.tenant_id})
    assert stored is not None
    # What the change feed publishes for the version, which this process stored, is the
    # version as history gives it.
    row = await repository.database[HISTORY].find_one(
        {"tenantId": saved.tenant_id, "version": saved.version}, projection={"_id": 1}
    )
    assert row is not None
    published = await repository.history_entry_by_id(row["_id"])
    from_history = await repository.version(saved.tenant_id, saved.version)
    assert published is not None and from_history is not None
    assert published == from_history
    # Stored as the readiness of what a read gives (the listing time aside: when it was sent,
    # and the row's seal, which covers it).
    expected = directory_row(read, repository.identifier_defaults)
    assert without_time(stored[DIRECTORY]) == without_time(expected)
    assert row_fault(stored, repository.chain) is None


def without_time(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in (LISTED_AT, BY_CHANGE, ROW_SEAL)}


async def test_a_save_answers_what_a_read_of_its_version_gives(
    repository: SettingsRepository,
) -> None:
    tenant = f"read-back-{uuid.uuid4().hex[:8]}"
    first = TenantSettings(
        tenant_id=tenant,
        provider=EPIC,
        providers={
            EPIC: ProviderSettings(
                headers={"epicClientId": "client", "epicUserId": "user"},
                fhir={"mrnIdentifier": "urn:oid:1.2.3"},
                ehr={"context": "Scheduling"},
            )
        },
    )
    saved = await save(repository, validated(first))
    await assert_answer_is_the_read(repository, saved)

    # One block changed, the others as they were: the changed one is what was stored, not the
    # model validated from its data before (which the copy still holds).
    second = await save(repository, with_blocks(validated(saved), ehr={"context": "Inbox"}))
    await assert_answer_is_the_read(repository, second)
    ehr = second.block(EPIC, SettingsBlock.EHR)
    assert ehr is not None and getattr(ehr, "context") == "Inbox"  # noqa: B009

    # The same data as before but in a new object: taken over, and still what a read gives.
    third = await save(
        repository,
        with_blocks(validated(second), fhir=dict(second.provider_settings(EPIC).fhir)),
    )
    await assert_answer_is_the_read(repository, third)
