"""Looking a tenant up by an external gateway id (the unauthenticated base path URL and
resolveExternalGateway do, for any well-formed id anyone makes up) is answered from an index on
each provider's id, not by reading every tenant's settings document."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import AsyncMongoClient

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.settings import with_provider_settings
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import (
    HISTORY,
    SETTINGS,
    SettingsRepository,
    gateway_id_path,
    gateway_id_queries,
)
from ehr_gateway.storage.secrets import ChainKeys, SecretBox
from tests.conftest import TEST_DATABASE, Gateway
from tests.documents import SELECT_EPIC
from tests.gql.test_jku_onboarding import _placeholder

MADE_UP_ID = "A" * 24


async def test_a_made_up_gateway_id_reads_no_tenant_document(
    gateway: Gateway, database_url: str, tenant_id: str
) -> None:
    await _placeholder(gateway, tenant_id)  # at least one tenant to read
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        settings = client[TEST_DATABASE][SETTINGS]
        plans = [
            str((await settings.find(query).limit(1).explain())["queryPlanner"]["winningPlan"])
            for query in gateway_id_queries(MADE_UP_ID)  # what find_by_gateway_id sends
        ]
    finally:
        await client.close()

    assert len(plans) == len(EhrProvider)
    for plan in plans:
        # A full scan: "SCAN tenant_settings" on the embedded server, COLLSCAN on MongoDB.
        assert f"SCAN {SETTINGS}'" not in plan and "COLLSCAN" not in plan, plan


async def test_the_ids_read_at_startup_skip_an_epic_tenant_whose_gateway_was_removed(
    gateway: Gateway, database_url: str, tenant_id: str
) -> None:
    """A gateway starting over a database where an Epic tenant's external gateway is null (an
    import of earlier code removed it) still loads every other id (it crashed on the null)."""
    with_id, without = tenant_id, f"{tenant_id}-none"
    await _placeholder(gateway, with_id)
    await gateway.execute(SELECT_EPIC, tenantId=without)
    client = connect(database_url)
    try:
        repository = SettingsRepository(
            client, TEST_DATABASE, SecretBox.from_data_dir(gateway.config.data_dir).chain
        )
        current = await repository.get(without)
        assert current is not None
        await repository.save(
            with_provider_settings(current, EhrProvider.EPIC, external_gateway=None),
            base_version=current.version, actor="earlier-import",
            changed_blocks=[SettingsBlock.EXTERNAL_GATEWAY],
            changed_paths=["providers.EPIC.externalGateway"],
        )  # fmt: skip
        ids = await repository.epic_gateway_ids()
    finally:
        await client.close()

    assert with_id in {tenant for tenant, _version in ids.values()}
    assert without not in {tenant for tenant, _version in ids.values()}


async def test_a_made_up_gateway_id_is_looked_for_in_history_through_an_index(
    gateway: Gateway, database_url: str, tenant_id: str
) -> None:
    """An id no document answers for is also looked for in history (its owner's document may
    have had it edited away): a seek per provider, not a read of every version."""
    await _placeholder(gateway, tenant_id)  # at least one history entry holding an id
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = client[TEST_DATABASE][HISTORY]
        plans = []
        for provider in EhrProvider:
            path = f"settings.{gateway_id_path(provider)}"
            query = {path: MADE_UP_ID, "tenantId": {"$gt": ""}}  # what find_by_gateway_id sends
            cursor = history.find(query, {"tenantId": 1}).sort("tenantId").limit(1)
            plans.append(str((await cursor.explain())["queryPlanner"]["winningPlan"]))
    finally:
        await client.close()

    for plan in plans:
        # Not a scan of every version, nor of one along another index (by tenant, a range).
        assert f"SCAN {HISTORY}'" not in plan and "COLLSCAN" not in plan, plan
        assert "externalGatewayId" in plan, plan


async def test_the_ids_read_at_startup_skip_a_document_whose_version_is_of_another_type(
    database_url: str,
) -> None:
    """A database writer's version of another type in one document does not stop the start
    (the read of every Epic id raised on it): the other tenants' ids are loaded."""
    database = f"gateway-ids-{uuid.uuid4().hex[:8]}"  # a malformed document of its own
    client = connect(database_url)
    try:
        documents = client[database][SETTINGS]
        for tenant, version in (("kept", 3), ("retyped", "3")):
            epic = {"EPIC": {"externalGateway": {"externalGatewayId": tenant}}}
            await documents.insert_one(
                {"_id": tenant, "version": version, "provider": "EPIC", "providers": epic}
            )
        repository = SettingsRepository(client, database, ChainKeys(b"k" * 32))
        ids = await repository.epic_gateway_ids()
        await client.drop_database(database)
    finally:
        await client.close()

    assert ids["kept"] == ("kept", 3)
    assert ids["retyped"] == ("retyped", 0)  # older than any version the feed tells of
