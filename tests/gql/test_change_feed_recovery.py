"""The database goes away under a running gateway: requests meanwhile get a clear
SERVICE_UNAVAILABLE, the gateway recovers by itself when it returns, no acknowledged write is lost,
and subscribers miss nothing, here or after reconnecting to another replica."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from ehr_gateway.storage.embedded import EmbeddedMongo
from ehr_gateway.storage.secrets import new_key
from tests.documents import READ_VERSION
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED, new_tenant
from tests.processes import GatewayProcess, TransportWsClient

STORE_KEY = """
mutation StoreKey($tenantId: ID!, $key: String!, $expectedVersion: Int) {
  updateEhrSettings(
    tenantId: $tenantId
    input: {ellkay: {waitlistingStatusName: $key}}
    expectedVersion: $expectedVersion
  ) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on VersionConflict { currentVersion }
  }
}
"""


SETTINGS_HISTORY = """
query History($tenantId: ID!, $before: Int) {
  settingsHistory(tenantId: $tenantId, first: 100, before: $before) {
    versions { version } nextBefore
  }
}
"""
DB_TIMEOUT_S = 1.0
RECOVERY_S = 5
# A request waits for the database at most once, after waiting at most for the write ahead of
# it on the same tenant to do the same; the rest is margin for a slow machine.
ANSWER_BOUND_S = 2 * DB_TIMEOUT_S + 1.5


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


async def wait_until(
    condition: Callable[[], bool],
    within: float,
    what: str,
    *,
    feeding: asyncio.Task[None] | None = None,
) -> None:
    """Poll ``condition``; ``feeding``, the task that would make it true, fails the wait
    with its own error if it ends in one."""
    deadline = time.monotonic() + within
    while not condition():
        if feeding is not None and feeding.done() and not feeding.cancelled():
            feeding.result()
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        await asyncio.sleep(0.05)


def history_versions(gateway: GatewayProcess, tenant_id: str) -> list[int]:
    """Every stored version of the tenant, oldest first."""
    versions: list[int] = []
    before = None
    while True:
        page = gateway.graphql(SETTINGS_HISTORY, tenantId=tenant_id, before=before)
        history = page["data"]["settingsHistory"]
        versions += [entry["version"] for entry in history["versions"]]
        before = history["nextBefore"]
        if before is None:
            return versions[::-1]


async def collect(client: TransportWsClient, operation_id: str, into: list[dict[str, Any]]) -> None:
    """Append each change the operation streams to ``into``, until the connection ends."""
    try:
        while True:
            data = await client.next_data(operation_id, within=3600)
            into.append(data["configurationChanged"])
    except websockets.ConnectionClosed:
        return


@dataclass
class Traffic:
    """Clients of one gateway, writing and reading a tenant's settings until told to stop, and
    what they were answered. Every answer must come within ANSWER_BOUND_S, with HTTP 200, and be
    either served or a SERVICE_UNAVAILABLE error; anything else is recorded as a broken
    promise."""

    gateway: GatewayProcess
    tenant_id: str
    acknowledged: list[tuple[float, int]] = field(default_factory=list)  # (when, version)
    served_reads: list[float] = field(default_factory=list)  # when
    unavailable: dict[str, int] = field(default_factory=lambda: {"write": 0, "read": 0})
    broken_promises: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledged_since(self, moment: float) -> list[float]:
        return [when for when, _ in self.acknowledged if when >= moment]

    def served_since(self, moment: float) -> list[float]:
        return [when for when in self.served_reads if when >= moment]

    async def write(self, writer: int) -> None:
        """Store one new version after another, without expectedVersion."""
        async with self._client() as client:
            attempt = 0
            while not self.stop.is_set():
                attempt += 1
                data = await self._ask(
                    client, "write", STORE_KEY,
                    tenantId=self.tenant_id, key=f"writer-{writer}-{attempt}", expectedVersion=None,
                )  # fmt: skip
                if data is None:
                    await asyncio.sleep(0.05)
                elif data["updateEhrSettings"]["__typename"] == "SettingsSaved":
                    version = data["updateEhrSettings"]["settings"]["version"]
                    self.acknowledged.append((time.monotonic(), version))
                else:
                    self.broken_promises.append(f"write: {data}")

    async def read(self) -> None:
        async with self._client() as client:
            while not self.stop.is_set():
                if await self._ask(client, "read", READ_VERSION, tenantId=self.tenant_id):
                    self.served_reads.append(time.monotonic())
                else:
                    await asyncio.sleep(0.05)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.gateway.url,
            headers={"authorization": f"Bearer {self.gateway.token}"},
            timeout=ANSWER_BOUND_S + 30,  # a late answer is measured, not cut off
        )

    async def _ask(
        self, client: httpx.AsyncClient, operation: str, document: str, **variables: Any
    ) -> dict[str, Any] | None:
        """The data of a served request; None after an error (a broken promise unless it was
        SERVICE_UNAVAILABLE)."""
        started = time.monotonic()
        try:
            response = await client.post(
                "/graphql", json={"query": document, "variables": variables}
            )
        except httpx.HTTPError as error:
            self.broken_promises.append(f"{operation}: {error!r}")
            return None
        elapsed = time.monotonic() - started
        if elapsed > ANSWER_BOUND_S:
            self.broken_promises.append(f"{operation}: answered in {elapsed:.1f}s")
        if response.status_code != 200:
            self.broken_promises.append(f"{operation}: HTTP {response.status_code}")
            return None
        body: dict[str, Any] = response.json()
        if "errors" not in body:
            data: dict[str, Any] = body["data"]
            return data
        codes = [error.get("extensions", {}).get("code") for error in body["errors"]]
        if codes == ["SERVICE_UNAVAILABLE"]:
            self.unavailable[operation] += 1
        else:
            self.broken_promises.append(f"{operation}: {body['errors']}")
        return None


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        tmp_path / "gateway",
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE="recovery",
        EHRGW_DB_TIMEOUT_MS=str(int(DB_TIMEOUT_S * 1000)),
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
    assert status == 503 and readiness["problems"][0] == "database unreachable"

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


WRITERS = 4
# More versions than a subscriber's queue holds (64), written within seconds before the kill:
# after the restart the change feed publishes those seconds of history again.
BEFORE_KILL = 100
AFTER_RETURN = 10


async def test_a_database_killed_mid_traffic_loses_no_acknowledged_write_and_no_version(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    tenant_id = new_tenant(gateway)
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    received: list[dict[str, Any]] = []
    following = asyncio.create_task(collect(subscriber, "1", received))
    traffic = Traffic(gateway, tenant_id)
    clients = [asyncio.create_task(traffic.write(writer)) for writer in range(WRITERS)]
    clients.append(asyncio.create_task(traffic.read()))
    restarted = EmbeddedMongo(database.data_dir, port=database.port)
    try:
        await wait_until(lambda: len(traffic.acknowledged) >= BEFORE_KILL, 30, "writes")
        await asyncio.to_thread(database.kill)
        # Traffic goes on through the outage: it is answered, and quickly.
        await wait_until(
            lambda: traffic.unavailable["write"] >= WRITERS and traffic.unavailable["read"] >= 2,
            within=20, what="answers during the outage",
        )  # fmt: skip
        await wait_for_feed(gateway, "down", within=10)
        await asyncio.to_thread(restarted.start)
        returned_at = time.monotonic()

        await wait_until(
            lambda: bool(traffic.acknowledged_since(returned_at))
            and bool(traffic.served_since(returned_at)),
            within=RECOVERY_S + 10, what="served again",
        )  # fmt: skip
        await wait_for_feed(gateway, "running", within=RECOVERY_S + 10)
        feed_back_after = time.monotonic() - returned_at
        first_write_after = min(traffic.acknowledged_since(returned_at)) - returned_at
        first_read_after = min(traffic.served_since(returned_at)) - returned_at
        await wait_until(
            lambda: len(traffic.acknowledged_since(returned_at)) >= AFTER_RETURN, 20, "writes"
        )
    finally:
        traffic.stop.set()
        await asyncio.gather(*clients)

    try:
        assert traffic.broken_promises == []
        # Served again without a restart, reads, writes and the feed alike.
        assert max(first_write_after, first_read_after, feed_back_after) <= RECOVERY_S, (
            first_write_after, first_read_after, feed_back_after,
        )  # fmt: skip
        stored = await asyncio.to_thread(history_versions, gateway, tenant_id)
        assert stored == list(range(1, len(stored) + 1))  # no gap
        acknowledged = [version for _, version in traffic.acknowledged]
        assert len(set(acknowledged)) == len(acknowledged)
        # None lost. A write whose answer was an error may have been stored too: then its
        # version is in history, and the subscriber must have it like any other.
        assert set(acknowledged) <= set(stored)

        await wait_until(
            lambda: len(received) >= len(stored), 15, "the subscriber's versions", feeding=following
        )
        assert [change["version"] for change in received] == stored
        assert not any(change["versionsSkipped"] for change in received)
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await assert_nothing_more(subscriber)
        await subscriber.close()
    finally:
        following.cancel()
        restarted.stop()
    output = gateway.stop()
    assert "Traceback" not in output, output[-5000:]
    assert "internal error" not in output, output[-5000:]


@pytest.fixture(scope="module")
def replica_settings(database_url: str) -> dict[str, str]:
    """What every replica of one deployment is started with: one database, one key (each
    verifies the history entries the others write)."""
    return {
        "EHRGW_MONGODB_URL": database_url,
        "EHRGW_DATABASE": f"r_{uuid.uuid4().hex[:8]}",
        "EHRGW_ENCRYPTION_KEY": new_key(),
    }


@pytest.fixture(scope="module")
def replicas(
    replica_settings: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes on one database, as behind a load balancer."""
    first = GatewayProcess(tmp_path_factory.mktemp("replica-a"), **replica_settings)
    try:
        second = GatewayProcess(tmp_path_factory.mktemp("replica-b"), **replica_settings)
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


@pytest.fixture
def doomed_replica(replica_settings: dict[str, str], tmp_path: Path) -> Iterator[GatewayProcess]:
    """One more replica of the deployment, for a test to kill."""
    replica = GatewayProcess(tmp_path, **replica_settings)
    yield replica
    replica.kill()


async def test_a_client_whose_replica_is_killed_resumes_on_another_without_gap_or_duplicate(
    replicas: tuple[GatewayProcess, GatewayProcess], doomed_replica: GatewayProcess
) -> None:
    _, survivor = replicas
    tenant_id = new_tenant(survivor)
    # Versions are written through the surviving replica all along, before, during and after.
    traffic = Traffic(survivor, tenant_id)
    writing = asyncio.create_task(traffic.write(0))
    try:
        client = await TransportWsClient.connect(doomed_replica.ws_url, token=doomed_replica.token)
        await client.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
        before: list[dict[str, Any]] = []
        following = asyncio.create_task(collect(client, "1", before))
        await wait_until(lambda: len(before) >= 5, 15, "live versions", feeding=following)

        await asyncio.to_thread(doomed_replica.kill)
        await asyncio.wait_for(following, 10)  # the connection ends, with no close frame
        killed_at = time.monotonic()
        await wait_until(lambda: len(traffic.acknowledged_since(killed_at)) >= 3, 15, "writes")
        last_seen = before[-1]["version"]
        client = await TransportWsClient.connect(survivor.ws_url, token=survivor.token)
        await client.subscribe(
            "1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=last_seen
        )
        after: list[dict[str, Any]] = []
        following = asyncio.create_task(collect(client, "1", after))
        # Live versions too, written after the client came back.
        resumed_at = time.monotonic()
        await wait_until(lambda: len(traffic.acknowledged_since(resumed_at)) >= 3, 15, "writes")
    finally:
        traffic.stop.set()
        await writing

    assert traffic.broken_promises == []
    stored = await asyncio.to_thread(history_versions, survivor, tenant_id)
    assert stored == list(range(1, len(stored) + 1))
    await wait_until(
        lambda: last_seen + len(after) >= len(stored), 15, "the missed versions", feeding=following
    )
    assert [change["version"] for change in before + after] == stored
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    await assert_nothing_more(client)
    await client.close()
