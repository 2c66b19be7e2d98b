"""A replica's change feed stops getting answers (its connection to the database stalls) while
another replica writes: the replica says its feed is down and stops serving from its caches, so
reads see the new version; once the connection answers again the feed recovers by itself and its
subscribers get the change.

The stall is made by a loopback proxy between that replica and the database that holds the
change stream's commands (opening it, polling it) and forwards everything else: requests go on
over the replica's other connections. The replica's database deadline is long (60 s, so the
driver's own socket timeout, twice that, is no help here): only the feed's watchdog
(EHRGW_CHANGE_FEED_STALL_S) can tell that the stream stopped answering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.database_proxy import Connection, DatabaseProxy, listening
from tests.faults.test_idempotent_retries import ENCRYPTION_KEY, new_tenant, post, store_raw
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED
from tests.processes import GatewayProcess, TransportWsClient

DATABASE = "change_feed_stall"
READ_VERSION = """
query ReadVersion($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr { ... on EllkaySettings { waitlistingStatusName } }
  }
}
"""
STALL_S = 2
WITHIN_S = 30  # generous: the machine is shared


def is_change_stream_command(chunk: bytes) -> bool:
    """Opening the change stream, or polling it (a getMore on the history collection)."""
    return b"$changeStream" in chunk or (
        b"getMore" in chunk and b"tenant_settings_history" in chunk
    )


class StallingProxy(DatabaseProxy):
    """While stalled, a connection that sends a change stream command is held (nothing more
    forwarded either way) until resumed."""

    def __init__(self, database_port: int) -> None:
        super().__init__(database_port)
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.held = asyncio.Event()  # a change stream command has been held

    def stall(self) -> None:
        self.held.clear()
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def forward(self, chunk: bytes, connection: Connection) -> bool:
        if not self.flowing.is_set() and is_change_stream_command(chunk):
            self.held.set()
            await self.flowing.wait()
        return True


@pytest.fixture
async def proxy(database: EmbeddedMongo) -> AsyncIterator[StallingProxy]:
    async with listening(StallingProxy(database.port)) as stalling:
        yield stalling
        stalling.resume()  # let held connections end


@pytest.fixture
def writer(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    """The replica that writes, straight to the database."""
    running = GatewayProcess(
        tmp_path / "writer",
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE=DATABASE,
    )
    yield running
    running.stop(5)


@pytest.fixture
async def stalled(
    proxy: StallingProxy, writer: GatewayProcess, tmp_path: Path
) -> AsyncIterator[GatewayProcess]:
    """The replica behind the proxy. Started off the event loop, which serves the proxy."""
    running = await asyncio.to_thread(
        GatewayProcess,
        tmp_path / "stalled",
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=proxy.url,
        EHRGW_DATABASE=DATABASE,
        EHRGW_DB_TIMEOUT_MS="60000",
        EHRGW_CHANGE_FEED_STALL_S=str(STALL_S),
    )
    yield running
    proxy.resume()
    await asyncio.to_thread(running.stop, 5)


async def health(gateway: GatewayProcess) -> dict[str, Any]:
    return await asyncio.to_thread(gateway.health)


async def wait_for_feed(gateway: GatewayProcess, state: str) -> None:
    deadline = time.monotonic() + WITHIN_S
    while (await health(gateway))["changeFeed"] != state:
        assert time.monotonic() < deadline, f"the feed is not {state} within {WITHIN_S} s"
        await asyncio.sleep(0.1)


async def feed_up_metric(gateway: GatewayProcess) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{gateway.url}/metrics")
    for line in response.text.splitlines():
        if line.startswith("ehrgw_change_feed_up "):
            return float(line.split()[1])
    raise AssertionError("no ehrgw_change_feed_up in /metrics")


async def read(gateway: GatewayProcess, tenant_id: str) -> dict[str, Any]:
    body = await post(gateway.url, gateway.token, READ_VERSION, tenantId=tenant_id)
    assert "errors" not in body, body
    settings: dict[str, Any] = body["data"]["integrationSettings"]
    return settings


async def test_a_stalled_feed_is_reported_down_stops_the_caches_and_recovers(
    proxy: StallingProxy, writer: GatewayProcess, stalled: GatewayProcess
) -> None:
    tenant_id = await asyncio.to_thread(new_tenant, writer)
    assert (await read(stalled, tenant_id))["version"] == 1
    assert (await read(stalled, tenant_id))["version"] == 1  # now from its caches
    subscriber = await TransportWsClient.connect(stalled.ws_url, token=stalled.token)
    await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id)
    await asyncio.to_thread(stalled.wait_for_feed_subscribers, 1)

    proxy.stall()
    await asyncio.wait_for(proxy.held.wait(), WITHIN_S)  # the feed's next poll hangs
    stored = await store_raw(writer, tenant_id, "changed", "stall-key")
    assert stored["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved", stored

    await wait_for_feed(stalled, "down")
    assert await feed_up_metric(stalled) == 0
    now = await read(stalled, tenant_id)
    assert now == {"version": 2, "ehr": {"waitlistingStatusName": "changed"}}

    proxy.resume()
    await wait_for_feed(stalled, "running")
    change = await subscriber.next_data("1", within=WITHIN_S)
    assert change["configurationChanged"]["version"] == 2
    assert await feed_up_metric(stalled) == 1
    await subscriber.close()
