"""Looking a tenant up by an external gateway id (the unauthenticated base path URL and
resolveExternalGateway do, for any well-formed id anyone makes up) is answered from an index on
each provider's id, not by reading every tenant's settings document."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.storage.repository import SETTINGS, gateway_id_queries
from tests.conftest import TEST_DATABASE, Gateway
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
