"""The directory row stored with each tenant's current settings (storage.directory): written by
every save, rolled forward with an interrupted write, and assessed again at startup when missing
or assessed on another basis; always what ehr.readiness.assess says of the stored settings."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.ehr.readiness import assess
from ehr_gateway.storage.chain import history_link
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.directory import PROJECTION, DirectoryQuery, find_arguments, row_basis
from ehr_gateway.storage.migrations import refresh_directory
from ehr_gateway.storage.repository import HISTORY, SETTINGS, Conflict, SettingsRepository
from ehr_gateway.storage.secrets import ChainKeys

GATEWAY = {
    "name": "EHR",
    "baseUrl": "https://ehr.hospital.example/api",
    "environment": "PRODUCTION",
    "externalGatewayId": "gw-1",
    "basePathUrl": "https://gateway.example.test/gateways/gw-1",
    "createdAt": "2026-01-01T00:00:00Z",
}


def cerner(tenant_id: str, *, gateway: bool = True) -> TenantSettings:
    """A Cerner tenant with its MRN identifier; ready with the default SSN identifier."""
    stored: dict[str, Any] = {"fhir": {"mrnIdentifier": "urn:oid:1.2.3"}}
    if gateway:
        stored["externalGateway"] = GATEWAY
    return TenantSettings.model_validate(
        {"tenantId": tenant_id, "provider": "CERNER", "providers": {"CERNER": stored}}
    )


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SettingsRepository]:
    """A repository on a database of its own: refresh_directory reads every tenant."""
    client = connect(database_url)
    database = f"directory_{uuid.uuid4().hex[:12]}"
    repository = SettingsRepository(client, database, ChainKeys(os.urandom(32)))
    await repository.prepare()
    yield repository
    await client.drop_database(database)
    await client.close()


async def save(repository: SettingsRepository, settings: TenantSettings, base: int) -> Any:
    return await repository.save(
        settings, base_version=base, actor="test", changed_blocks=[SettingsBlock.PROVIDER],
        changed_paths=["provider"],
    )  # fmt: skip


async def stored_row(repository: SettingsRepository, tenant_id: str) -> dict[str, Any]:
    document = await repository.database[SETTINGS].find_one({"_id": tenant_id})
    assert document is not None
    row: dict[str, Any] = document["directory"]
    return row


async def assert_row_is_readiness(repository: SettingsRepository, tenant_id: str) -> None:
    settings = await repository.get(tenant_id)
    assert settings is not None
    assessed = assess(settings, repository.identifier_defaults)
    row = await stored_row(repository, tenant_id)
    assert row["ready"] is assessed.ready
    assert row["missing"] == len(assessed.missing)
    assert row["missingPaths"] == [".".join(check.path) for check in assessed.missing]
    assert row["basis"] == row_basis(repository.identifier_defaults)
    assert row["byId"] == tenant_id
    assert row["byChange"].endswith(f" {tenant_id}")


async def test_each_save_stores_the_readiness_of_what_it_stored(
    repository: SettingsRepository,
) -> None:
    tenant_id = f"s-{uuid.uuid4().hex[:8]}"
    versions = [
        TenantSettings(tenant_id=tenant_id),
        cerner(tenant_id, gateway=False),
        cerner(tenant_id),
        TenantSettings(
            tenant_id=tenant_id,
            provider=EhrProvider.EPIC,
            providers={EhrProvider.EPIC: ProviderSettings(ehr={"context": "Scheduling"})},
        ),
    ]
    readiness = []
    for base, settings in enumerate(versions):
        assert isinstance(await save(repository, settings, base), TenantSettings)
        await assert_row_is_readiness(repository, tenant_id)
        readiness.append((await stored_row(repository, tenant_id))["ready"])
    assert readiness == [False, False, True, False]
    # History keeps the settings only: the row is derived from them.
    entry = await repository.database[HISTORY].find_one({"tenantId": tenant_id, "version": 3})
    assert entry is not None and "directory" not in entry["settings"]


async def test_the_row_follows_a_version_rolled_forward(repository: SettingsRepository) -> None:
    tenant_id = f"r-{uuid.uuid4().hex[:8]}"
    assert isinstance(await save(repository, cerner(tenant_id, gateway=False), 0), TenantSettings)
    assert (await stored_row(repository, tenant_id))["ready"] is False
    # A writer died after storing version 2's history entry, before the document: version 2
    # adds the external gateway, which makes the tenant ready.
    orphan = await repository.database[HISTORY].find_one({"tenantId": tenant_id, "version": 1})
    assert orphan is not None
    orphan.pop("_id")
    orphan["version"] = 2
    orphan["settings"] = {**orphan["settings"], "version": 2}
    orphan["settings"]["providers"]["CERNER"]["externalGateway"] = GATEWAY
    orphan["chain"] = history_link(orphan, orphan["chain"]["hash"], repository.chain)
    await repository.database[HISTORY].insert_one(orphan)

    assert await save(repository, cerner(tenant_id, gateway=False), 1) == Conflict(2)
    row = await stored_row(repository, tenant_id)
    assert row["ready"] is True
    await assert_row_is_readiness(repository, tenant_id)


async def test_rows_missing_or_on_another_basis_are_assessed_again(
    repository: SettingsRepository,
) -> None:
    written_before, other_basis, current = (f"b{n}-{uuid.uuid4().hex[:6]}" for n in range(3))
    for tenant_id in (written_before, other_basis, current):
        assert isinstance(await save(repository, cerner(tenant_id), 0), TenantSettings)
    settings = repository.database[SETTINGS]
    await settings.update_one({"_id": written_before}, {"$unset": {"directory": ""}})
    await settings.update_one(
        {"_id": other_basis}, {"$set": {"directory.basis": "0:", "directory.ready": False}}
    )
    everyone = DirectoryQuery(None, None, None, None, None, limit=10)
    listed = await repository.directory_page(everyone)
    # No row, or one changed outside a gateway (its seal no longer verifies): not listed.
    assert [row.tenant_id for row in listed.rows] == [current]

    assert await refresh_directory(repository) == 2
    for tenant_id in (written_before, other_basis, current):
        await assert_row_is_readiness(repository, tenant_id)
    assert await refresh_directory(repository) == 0  # nothing left to do
    listed = await repository.directory_page(everyone)
    assert [row.tenant_id for row in listed.rows] == sorted([written_before, other_basis, current])


async def test_a_deployment_without_an_ssn_default_assesses_with_its_own_defaults(
    repository: SettingsRepository,
) -> None:
    tenant_id = f"d-{uuid.uuid4().hex[:8]}"
    assert isinstance(await save(repository, cerner(tenant_id), 0), TenantSettings)
    assert (await stored_row(repository, tenant_id))["ready"] is True
    # The same database under a deployment whose SSN identifier has no default.
    other = SettingsRepository(
        repository._client,
        repository.database.name,
        repository.chain,
        IdentifierDefaults(ssn_identifier=None),
    )
    assert await refresh_directory(other) == 1
    await assert_row_is_readiness(other, tenant_id)
    row = await stored_row(other, tenant_id)
    assert (row["ready"], row["missingPaths"]) == (False, ["fhir.ssnIdentifier"])
    listed = await other.directory_page(
        DirectoryQuery(None, EhrProvider.CERNER, False, datetime(2020, 1, 1, tzinfo=UTC), None, 5)
    )
    assert [row.tenant_id for row in listed.rows] == [tenant_id]


def explained(winning_plan: Any) -> str:
    return str(winning_plan)


@pytest.mark.parametrize(
    ("provider", "ready", "changed_since", "after"),
    list(
        itertools.product(
            (None, EhrProvider.ATHENA),
            (None, True, False),
            (None, datetime(2020, 1, 1, tzinfo=UTC)),
            (None, "after"),
        )
    ),
)
async def test_every_page_is_a_range_of_one_index_in_its_order(
    repository: SettingsRepository,
    provider: EhrProvider | None,
    ready: bool | None,
    changed_since: datetime | None,
    after: str | None,
) -> None:
    """A deep page costs what the first does because each is read as the range after its
    cursor on an index in the page's order: no scan, no sort of the matching documents, on
    the embedded server (SQLite's plan) and on MongoDB alike."""
    for n in range(3):
        await save(repository, cerner(f"x{n}-{uuid.uuid4().hex[:4]}"), 0)
    if after is not None:
        after = "01800000000000 x" if changed_since else "x"
    query = DirectoryQuery(None, provider, ready, changed_since, after, limit=50)
    found, order = find_arguments(query)
    cursor = repository.database[SETTINGS].find(found, projection=PROJECTION)
    plan = await cursor.sort([(order, 1)]).limit(51).explain()
    winning = explained(plan["queryPlanner"]["winningPlan"])
    # The embedded server: "SEARCH ... USING INDEX", never "SCAN tenant_settings" (every
    # document) nor "TEMP B-TREE FOR ORDER BY" (sorting them). MongoDB: an IXSCAN, no COLLSCAN
    # nor in-memory SORT stage.
    assert "USING INDEX" in winning or "IXSCAN" in winning, winning
    for sign in (f"SCAN {SETTINGS}'", "TEMP B-TREE", "COLLSCAN", "'SORT'"):
        assert sign not in winning, winning
