"""Replaying history (configurationChanged with sinceVersion) cannot exhaust the gateway: the
attack is a viewer opening many replays of a tenant with many large versions on one
connection, then not reading. History is read a page at a time, the next page only once the
last has been sent, and a replay whose subscriber has gone reads nothing more."""

from __future__ import annotations

import asyncio
import json
import re
import socket as socket_module
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from ehr_gateway.runtime import dev_tokens
from tests.documents import READ_VERSION, SELECT_ATHENA
from tests.processes import GatewayProcess, started_gateway

METRICS_TOKEN = "replay-metrics-0123456789abcdef"
MiB = 1024 * 1024
VERSIONS = 40  # four pages
SUBSCRIPTIONS = 12
# What the replays may add to the gateway's memory while their subscriber does not read: a
# page per connection slot and what the sockets hold. Reading each replay whole took ~10 MiB
# per subscription here.
MEMORY_BOUND = 60 * MiB

UPDATE_MAPPING = """
mutation UpdateMapping($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
REPLAY = """
subscription Replay($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId, sinceVersion: 0) {
    version
    settings { ehr { ... on AthenaSettings { customFieldMapping { name value } } } }
  }
}
"""


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("replay"), database_url, EHRGW_METRICS_TOKEN=METRICS_TOKEN
    ) as running:
        yield running


def large_history(gateway: GatewayProcess) -> str:
    """A tenant whose every version carries a 500-entry custom field mapping (~100 KB)."""
    tenant_id = f"big-{uuid.uuid4().hex[:8]}"
    gateway.graphql(SELECT_ATHENA, tenantId=tenant_id)
    for version in range(VERSIONS - 1):
        mapping = [
            {"name": f"n{i:03d}" + "x" * 90, "value": f"{version}-" + "y" * 95} for i in range(500)
        ]
        gateway.graphql(
            UPDATE_MAPPING,
            tenantId=tenant_id,
            input={"athena": {"customFieldEnabled": True, "customFieldMapping": mapping}},
        )
    return tenant_id


def rss_bytes(gateway: GatewayProcess) -> int:
    status = Path(f"/proc/{gateway.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def metric(gateway: GatewayProcess, name: str) -> float:
    response = httpx.get(
        f"{gateway.url}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
    )
    response.raise_for_status()
    found = re.search(rf"^{name}(?:_total)? (\S+)$", response.text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


def settled(read: Callable[[], float], within: float = 60) -> float:
    """``read``'s value once it has stopped changing (the same over several polls)."""
    deadline = time.monotonic() + within
    value, unchanged = read(), 0
    while unchanged < 6:
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.5)
        now = read()
        unchanged = unchanged + 1 if now == value else 0
        value = now
    return value


async def test_replays_a_subscriber_does_not_read_hold_bounded_memory_and_stop_when_it_leaves(
    gateway: GatewayProcess,
) -> None:
    tenant_id = large_history(gateway)
    viewer = dev_tokens.mint(
        gateway.data_dir, tenants=[tenant_id], roles=("viewer",), subject="replayer"
    )
    pages = lambda: metric(gateway, "ehrgw_subscription_history_pages")  # noqa: E731
    pages_before = pages()
    memory_before = rss_bytes(gateway)

    # A small receive buffer, fixed (no autotuning, which on loopback can take tens of MiB):
    # what the subscriber does not read stays in the gateway, as over a slow network.
    raw = socket_module.socket(socket_module.AF_INET, socket_module.SOCK_STREAM)
    raw.setsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVBUF, 64 * 1024)
    raw.connect(("127.0.0.1", gateway.port))
    raw.setblocking(False)
    socket = await websockets.connect(
        gateway.ws_url,
        sock=raw,
        subprotocols=["graphql-transport-ws"],
        max_size=None,
        max_queue=1,
    )
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {viewer}"}})
    )
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    for operation in range(SUBSCRIPTIONS):
        await socket.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": str(operation),
                    "payload": {"query": REPLAY, "variables": {"tenantId": tenant_id}},
                }
            )
        )
    socket.transport.pause_reading()  # the subscriber stops reading

    stalled_pages = await asyncio.to_thread(settled, pages) - pages_before
    grown = rss_bytes(gateway) - memory_before
    # None holds its whole replay: a page at a time, each read once the last was sent.
    assert stalled_pages > 0
    assert grown < MEMORY_BOUND, f"grew {grown / MiB:.0f} MiB"
    # Another caller is still answered.
    assert gateway.graphql(READ_VERSION, tenantId=tenant_id)["data"]["integrationSettings"] == {
        "version": VERSIONS
    }

    socket.transport.abort()  # the subscriber goes away
    await asyncio.to_thread(settled, lambda: metric(gateway, "ehrgw_subscriptions"))
    assert metric(gateway, "ehrgw_subscriptions") == 0
    assert await asyncio.to_thread(settled, pages) - pages_before == stalled_pages
    assert rss_bytes(gateway) - memory_before < MEMORY_BOUND
