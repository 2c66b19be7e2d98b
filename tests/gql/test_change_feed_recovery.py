"""The database goes away under a running gateway: requests meanwhile get a clear
SERVICE_UNAVAILABLE, the gateway recovers by itself when it returns, no acknowledged write is lost,
and subscribers miss nothing, here or after reconnecting to another replica."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.embedded import EmbeddedMongo, free_port
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED, new_tenant
from tests.processes import GatewayProcess, TransportWsClient

STORE_KEY = """
mutation StoreKey($tenantId: ID!, $key: String!, $expectedVersion: Int) {
  updateEhrSettings(
    tenantId: $tenantId, input: {ellkay: {subscriberKey: $key}}, expectedVersion: $expectedVersion
  ) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on VersionConflict { currentVersion }
  }
}
"""


def store_version(
    gateway: GatewayProcess, tenant_id: str, version: int, within: float = 15
) -> None:
    """Store ``version`` of the tenant's settings through the gateway, retrying (for at most
    ``within`` seconds) while the gateway cannot reach its database. A retry after an attempt
    that did store the version sees a conflict at exactly that version."""
    deadline = time.monotonic() + within
    variables = {"tenantId": tenant_id, "key": f"key-{version}", "expectedVersion": version - 1}
    while True:
        try:
            response = httpx.post(
                f"{gateway.url}/graphql",
                json={"query": STORE_KEY, "variables": variables},
                headers={"authorization": f"Bearer {gateway.token}"},
                timeout=10,
            )
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as error:
            body = {"errors": [repr(error)]}
        if "errors" not in body:
            result = body["data"]["updateEhrSettings"]
            stored = (result.get("settings") or {}).get("version") or result.get("currentVersion")
            assert stored == version, result
            return
        assert time.monotonic() < deadline, f"version {version} was not stored: {body}"
        time.sleep(0.2)


async def wait_for_feed(gateway: GatewayProcess, state: str, within: float) -> None:
    deadline = time.monotonic() + within
    health = await asyncio.to_thread(gateway.health)
    while health["changeFeed"] != state and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        health = await asyncio.to_thread(gateway.health)
    assert health["changeFeed"] == state, f"after {within}s: {health}"


async def versions_received(client: TransportWsClient, operation_id: str, count: int) -> list[int]:
    return [
        (await client.next_data(operation_id))["configurationChanged"]["version"]
        for _ in range(count)
    ]


async def assert_nothing_more(client: TransportWsClient, within: float = 1) -> None:
    """No further message (a duplicate, say) arrives within ``within`` seconds."""
    with pytest.raises(TimeoutError):
        message = await client.receive(within)
        pytest.fail(f"unexpected message: {message}")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    """A database server of this test's own, on a fixed port so that it can come back there."""
    server = EmbeddedMongo(tmp_path / "database", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        tmp_path / "gateway",
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE="recovery",
        EHRGW_DB_TIMEOUT_MS="1000",
    )
    yield gateway
    gateway.stop(5)


async def test_a_subscriber_gets_every_version_after_the_database_restarts(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    tenant_id = new_tenant(gateway)
    for version in (2, 3):
        store_version(gateway, tenant_id, version)
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=1)
    assert await versions_received(subscriber, "1", 2) == [2, 3]

    await asyncio.to_thread(database.stop)
    await wait_for_feed(gateway, "down", within=10)
    restarted = EmbeddedMongo(database.data_dir, port=database.port)
    await asyncio.to_thread(restarted.start)
    try:
        # Perhaps before the feed is back: it comes from the stream or from the catch-up.
        await asyncio.to_thread(store_version, gateway, tenant_id, 4)
        await wait_for_feed(gateway, "running", within=15)
        for version in (5, 6):
            await asyncio.to_thread(store_version, gateway, tenant_id, version)

        assert await versions_received(subscriber, "1", 3) == [4, 5, 6]
        await assert_nothing_more(subscriber)
        await subscriber.close()
    finally:
        restarted.stop()


READ_VERSION = """
query Read($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }
"""
RECOVERY_S = 5


def _read(gateway: GatewayProcess, tenant_id: str) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": READ_VERSION, "variables": {"tenantId": tenant_id}},
        headers={"authorization": f"Bearer {gateway.token}"},
        timeout=10,  # the gateway's own database timeout is 1 s: an answer comes well before
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _readiness(gateway: GatewayProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{gateway.url}/readyz", timeout=10)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_a_database_outage_is_service_unavailable_and_the_gateway_recovers_by_itself(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    tenant_id = new_tenant(gateway)
    store_version(gateway, tenant_id, 2)  # acknowledged
    assert _readiness(gateway) == (200, {"status": "ready"})

    await asyncio.to_thread(database.stop)
    during = await asyncio.to_thread(_read, gateway, tenant_id)
    assert during["data"] == {"integrationSettings": None}
    assert during["errors"][0]["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
    assert during["errors"][0]["message"] == "the database is unavailable; retry shortly"
    status, readiness = await asyncio.to_thread(_readiness, gateway)
    assert status == 503 and readiness["problems"][0].startswith("database: ")

    restarted = EmbeddedMongo(database.data_dir, port=database.port)
    await asyncio.to_thread(restarted.start)
    try:
        deadline = time.monotonic() + RECOVERY_S
        after = await asyncio.to_thread(_read, gateway, tenant_id)
        while "errors" in after and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            after = await asyncio.to_thread(_read, gateway, tenant_id)
        # Served again within RECOVERY_S of the database's return, without a restart, and the
        # acknowledged version is there.
        assert after == {"data": {"integrationSettings": {"version": 2}}}
        await wait_for_feed(gateway, "running", within=15)
        assert (await asyncio.to_thread(_readiness, gateway))[0] == 200
    finally:
        restarted.stop()
    output = gateway.stop()
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def replicas(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes on one database, as behind a load balancer."""
    settings = {"EHRGW_MONGODB_URL": database_url, "EHRGW_DATABASE": f"r_{uuid.uuid4().hex[:8]}"}
    first = GatewayProcess(tmp_path_factory.mktemp("replica-a"), **settings)
    try:
        second = GatewayProcess(tmp_path_factory.mktemp("replica-b"), **settings)
    except BaseException:
        first.stop(5)
        raise
    yield first, second
    first.stop(5)
    second.stop(5)


async def test_a_client_that_reconnects_to_the_other_replica_gets_exactly_what_it_missed(
    replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    first, second = replicas
    tenant_id = new_tenant(first)
    store_version(first, tenant_id, 2)
    client = await TransportWsClient.connect(first.ws_url, token=first.token)
    await client.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    assert await versions_received(client, "1", 2) == [1, 2]
    await client.close()

    for version in (3, 4):
        await asyncio.to_thread(store_version, second, tenant_id, version)
    client = await TransportWsClient.connect(second.ws_url, token=second.token)
    await client.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=2)

    assert await versions_received(client, "1", 2) == [3, 4]
    await asyncio.to_thread(store_version, first, tenant_id, 5)
    assert await versions_received(client, "1", 1) == [5]
    await assert_nothing_more(client)
    await client.close()
