"""expectedVersion: concurrent writers never lose each other's updates; history has no gaps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.resolvers.context import Context, Deployment
from ehr_gateway.resolvers.outcomes import Saved
from ehr_gateway.resolvers.settings import get_settings, select_provider, update_patient_restriction
from ehr_gateway.runtime.broker import Broker
from ehr_gateway.runtime.settings_cache import SettingsCache
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import Conflict, SettingsRepository
from ehr_gateway.storage.secrets import SecretBox
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import (
    INTEGRATION_SETTINGS,
    SELECT_PROVIDER,
    SETTINGS_HISTORY,
    UPDATE_EHR,
    UPDATE_PATIENT_RESTRICTION,
)


async def _versions(gateway: Gateway, tenant_id: str) -> list[int]:
    data = await gateway.execute(SETTINGS_HISTORY, tenantId=tenant_id, first=100)
    return [version["version"] for version in data["settingsHistory"]["versions"]]


async def test_a_stale_expected_version_is_a_conflict_and_stores_nothing(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input={"ellkay": {"waitlistingStatusName": "first"}},
        expectedVersion=1,
    )  # fmt: skip
    data = await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input={"ellkay": {"waitlistingStatusName": "stale"}},
        expectedVersion=1,
    )  # fmt: skip
    assert data["updateEhrSettings"] == {"__typename": "VersionConflict", "currentVersion": 2}
    stored = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    assert stored["integrationSettings"]["ehr"]["waitlistingStatusName"] == "first"


async def test_expected_version_zero_creates_a_tenant_only_once(
    gateway: Gateway, tenant_id: str
) -> None:
    first = await gateway.execute(
        SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC", expectedVersion=0
    )
    second = await gateway.execute(
        SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA", expectedVersion=0
    )
    assert first["selectEhrProvider"]["__typename"] == "SettingsSaved"
    assert second["selectEhrProvider"] == {"__typename": "VersionConflict", "currentVersion": 1}


async def test_of_twenty_concurrent_writers_with_one_expected_version_exactly_one_wins(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")

    async def write(writer: int) -> dict[str, object]:
        data = await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id,
            input={"ellkay": {"waitlistingStatusName": f"w{writer}"}}, expectedVersion=1,
        )  # fmt: skip
        result: dict[str, object] = data["updateEhrSettings"]
        return result

    results = await asyncio.gather(*(write(writer) for writer in range(20)))
    winners = [result for result in results if result["__typename"] == "SettingsSaved"]
    losers = [result for result in results if result["__typename"] == "VersionConflict"]
    assert len(winners) == 1
    assert len(losers) == 19
    assert all(loser["currentVersion"] == 2 for loser in losers)
    stored = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    settings = stored["integrationSettings"]
    assert settings["version"] == 2
    assert (
        settings["ehr"]["waitlistingStatusName"]
        == winners[0]["settings"]["ehr"]["waitlistingStatusName"]
    )
    assert await _versions(gateway, tenant_id) == [2, 1]


# These tests are about consistency under contention, not latency: their writers' database
# calls get time enough on a loaded machine (the default deadline is for one request, and a
# batch of twenty writes to one tenant on a busy 2-core CI machine can take longer).
CONTENTION = {"db_timeout_ms": 60_000}


@pytest.fixture
async def contended(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in open_gateway(gateway_config(database_url, tmp_path, **CONTENTION)):
        yield opened


async def test_concurrent_writers_without_expected_version_all_land_in_gapless_history(
    contended: Gateway, tenant_id: str
) -> None:
    gateway = contended
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    expressions = [f"age < {limit}" for limit in range(1, 21)]
    results = await asyncio.gather(
        *(
            gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=expression)
            for expression in expressions
        )
    )
    assert all(
        result["updatePatientRestriction"]["__typename"] == "SettingsSaved" for result in results
    )
    assert await _versions(gateway, tenant_id) == list(range(21, 0, -1))
    history = await gateway.execute(SETTINGS_HISTORY, tenantId=tenant_id, first=100)
    stored_expressions = {
        version["settings"]["patientRestriction"]["expression"]
        for version in history["settingsHistory"]["versions"][:-1]  # all but the provider's
    }
    assert stored_expressions == set(expressions)


async def test_writers_in_two_processes_on_one_database_never_lose_an_update(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Each app has its own per-tenant write queue, so only the version compare-and-set in the
    database stands between these writers."""
    config = gateway_config(database_url, tmp_path, **CONTENTION)
    async for first in open_gateway(config):
        async for second in open_gateway(config):
            await first.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
            conditional = await asyncio.gather(
                *(
                    replica.execute(
                        UPDATE_EHR,
                        tenantId=tenant_id,
                        input={"ellkay": {"waitlistingStatusName": f"c{writer}"}},
                        expectedVersion=1,
                    )
                    for writer, replica in enumerate([first, second] * 10)
                )
            )
            outcomes = [data["updateEhrSettings"]["__typename"] for data in conditional]
            assert outcomes.count("SettingsSaved") == 1
            assert outcomes.count("VersionConflict") == 19

            unconditional = await asyncio.gather(
                *(
                    replica.execute(
                        UPDATE_PATIENT_RESTRICTION,
                        tenantId=tenant_id,
                        expression=f"age < {writer + 1}",
                    )
                    for writer, replica in enumerate([first, second] * 10)
                )
            )
            assert all(
                data["updatePatientRestriction"]["__typename"] == "SettingsSaved"
                for data in unconditional
            )
            assert await _versions(first, tenant_id) == list(range(22, 0, -1))


HEADERS = """
query Headers($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    headers { ... on GenericHeaderSettings { customHeaders { name value } } }
  }
}
"""
ADD_HEADERS = """
mutation AddHeader($tenantId: ID!, $headers: [CustomHeaderInput!]!, $expectedVersion: Int!) {
  updateHeaderSettings(
    tenantId: $tenantId, input: {ellkay: {customHeaders: $headers}},
    expectedVersion: $expectedVersion
  ) { __typename ... on VersionConflict { currentVersion } }
}
"""


async def test_fifty_read_modify_write_clients_on_two_replicas_lose_no_update(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Each of 50 clients reads the header list, appends its own header and saves with the
    version it read, retrying on VersionConflict, through one of two gateway apps on one
    database: every header ends up stored, and history has one version per save, no gaps."""
    config = gateway_config(database_url, tmp_path, **CONTENTION)
    async for first in open_gateway(config):
        async for second in open_gateway(config):
            await first.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")

            async def append(client: int, gateway: Gateway) -> int:
                for attempt in range(1, 500):
                    read = (await gateway.execute(HEADERS, tenantId=tenant_id))[
                        "integrationSettings"
                    ]
                    headers = read["headers"]["customHeaders"]
                    mine = {"name": f"X-Client-{client}", "value": str(client)}
                    saved = await gateway.execute(
                        ADD_HEADERS, tenantId=tenant_id, headers=[*headers, mine],
                        expectedVersion=read["version"],
                    )  # fmt: skip
                    if saved["updateHeaderSettings"]["__typename"] == "SettingsSaved":
                        return attempt
                raise AssertionError(f"client {client} never got its write in")

            replicas = (first, second)
            attempts = await asyncio.gather(
                *(append(client, replicas[client % 2]) for client in range(50))
            )
            final = (await first.execute(HEADERS, tenantId=tenant_id))["integrationSettings"]
            names = {header["name"] for header in final["headers"]["customHeaders"]}
            assert names == {f"X-Client-{client}" for client in range(50)}
            assert final["version"] == 51
            assert sorted(await _versions(first, tenant_id)) == list(range(1, 52))
            assert max(attempts) > 1  # they really did collide


@pytest.fixture
async def two_processes(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Context, Context]]:
    """What resolvers get in two gateway processes on one database, each with a settings cache
    that serves but is told of no other process's writes (its change feed never delivers):
    whatever one cached is behind as soon as the other writes."""
    client = connect(database_url)
    database = f"conflict_{uuid.uuid4().hex[:12]}"
    box = SecretBox.from_data_dir(tmp_path)
    deployment = Deployment(
        public_base_url="https://x.test", identifier_defaults=IdentifierDefaults()
    )
    contexts = []
    for _ in range(2):
        repository = SettingsRepository(client, database, box.chain)
        await repository.prepare()
        cache = SettingsCache(live=lambda: True)
        contexts.append(Context(repository, box, deployment, Broker(), settings_cache=cache))
    yield contexts[0], contexts[1]
    await client.close()


async def test_a_write_from_cached_settings_another_process_moved_on_loses_nothing(
    two_processes: tuple[Context, Context], tenant_id: str
) -> None:
    here, there = two_processes
    assert isinstance(await select_provider(here, tenant_id, EhrProvider.ELLKAY, 0), Saved)
    assert (await get_settings(here, tenant_id)) is not None  # cached here at version 1
    moved = await update_patient_restriction(there, tenant_id, "age < 18", 1)
    assert isinstance(moved, Saved) and moved.settings.version == 2

    # Here still has version 1 cached: the conflict names the version the database holds.
    stale = await update_patient_restriction(here, tenant_id, "age < 65", 1)
    assert stale == Conflict(2)
    current = await update_patient_restriction(here, tenant_id, "age < 65", 2)
    assert isinstance(current, Saved) and current.settings.version == 3

    # Moved on again elsewhere; a write here without expectedVersion keeps that change.
    assert isinstance(await select_provider(there, tenant_id, EhrProvider.CERNER, 3), Saved)
    unconditional = await update_patient_restriction(here, tenant_id, "age > 1", None)
    assert isinstance(unconditional, Saved)
    assert unconditional.settings.version == 5
    assert unconditional.settings.provider is EhrProvider.CERNER
    stored = await here.repository.get(tenant_id)
    assert stored is not None and stored.version == 5
    assert stored.provider is EhrProvider.CERNER
    assert stored.patient_restriction.expression == "age > 1"
    history = await here.repository.versions_after(tenant_id, 0)
    assert [entry.version for entry in history] == [1, 2, 3, 4, 5]
    audit, _ = await here.repository.audit.page(tenant_id, 10, None)
    assert sorted(entry.version or 0 for entry in audit) == [1, 2, 3, 4, 5]


async def test_a_refusal_is_decided_on_the_database_not_on_cached_settings(
    two_processes: tuple[Context, Context], tenant_id: str
) -> None:
    here, there = two_processes
    assert isinstance(await select_provider(here, tenant_id, EhrProvider.ELLKAY, 0), Saved)
    assert isinstance(await select_provider(there, tenant_id, EhrProvider.EPIC, 1), Saved)
    # Cached here, the tenant is on ELLKAY, where the same restriction is no change at all;
    # the database knows better.
    outcome = await update_patient_restriction(here, tenant_id, None, 1)
    assert outcome == Conflict(2)
    again = await update_patient_restriction(here, tenant_id, None, 2)
    assert isinstance(again, Saved) and again.settings.version == 2  # nothing to change
    assert again.settings.provider is EhrProvider.EPIC
