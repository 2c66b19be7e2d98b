"""configurationChanged and configurationChanges over WebSocket, against real gateway processes
sharing one database: history from sinceVersion, then live changes from any replica."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from ehr_gateway.storage.secrets import new_key
from tests.documents import SELECT_ELLKAY
from tests.processes import GatewayProcess, LegacyWsClient, TransportWsClient

CONFIGURATION_CHANGED = """
subscription ConfigurationChanged($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) {
    tenantId version changedBlocks actor versionsSkipped changedAt
    settings { version provider ehr { ... on EllkaySettings { waitlistingStatusName } } }
  }
}
"""
CONFIGURATION_CHANGES = """
subscription ConfigurationChanges($tenantIds: [ID!]) {
  configurationChanges(tenantIds: $tenantIds) { tenantId version }
}
"""
SET_SUBSCRIBER_KEY = """
mutation SetSubscriberKey($tenantId: ID!, $key: String!) {
  updateEhrSettings(tenantId: $tenantId, input: {ellkay: {waitlistingStatusName: $key}}) {
    __typename
  }
}
"""


@pytest.fixture(scope="module")
def replicas(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes on one database, as behind a load balancer."""
    database = f"replicas_{uuid.uuid4().hex[:8]}"
    # One key, as every replica of a deployment has: each verifies the others' history entries.
    settings = {
        "EHRGW_MONGODB_URL": database_url,
        "EHRGW_DATABASE": database,
        "EHRGW_ENCRYPTION_KEY": new_key(),
    }
    first = GatewayProcess(tmp_path_factory.mktemp("replica-a"), **settings)
    try:
        second = GatewayProcess(tmp_path_factory.mktemp("replica-b"), **settings)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def replica(replicas: tuple[GatewayProcess, GatewayProcess]) -> GatewayProcess:
    return replicas[0]


def write_versions(gateway: GatewayProcess, tenant_id: str, *keys: str) -> None:
    for key in keys:
        gateway.graphql(SET_SUBSCRIBER_KEY, tenantId=tenant_id, key=key)


def new_tenant(gateway: GatewayProcess) -> str:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    gateway.graphql(SELECT_ELLKAY, tenantId=tenant_id)
    return tenant_id


@pytest.mark.parametrize("client", [TransportWsClient, LegacyWsClient], ids=lambda c: c.protocol)
async def test_since_version_sends_history_then_live_changes_without_gap_or_duplicate(
    replica: GatewayProcess, client: type[TransportWsClient]
) -> None:
    tenant_id = new_tenant(replica)  # version 1
    write_versions(replica, tenant_id, "k2", "k3")
    subscriber = await client.connect(replica.ws_url, token=replica.token)
    await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=1)

    received = [(await subscriber.next_data("1"))["configurationChanged"] for _ in range(2)]
    await asyncio.to_thread(write_versions, replica, tenant_id, "k4", "k5")
    received += [(await subscriber.next_data("1"))["configurationChanged"] for _ in range(2)]

    assert [change["version"] for change in received] == [2, 3, 4, 5]
    assert [change["settings"]["ehr"]["waitlistingStatusName"] for change in received] == [
        "k2", "k3", "k4", "k5",
    ]  # fmt: skip
    assert all(change["changedBlocks"] == ["EHR"] for change in received)
    assert all(change["versionsSkipped"] is False for change in received)
    assert all(change["tenantId"] == tenant_id and change["actor"] for change in received)
    await subscriber.close()


async def test_since_version_0_on_a_tenant_with_no_settings_yet_sends_its_first_version(
    replica: GatewayProcess,
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"  # never configured
    subscriber = await TransportWsClient.connect(replica.ws_url, token=replica.token)
    await subscriber.subscribe("new", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)

    # Stored before or after the subscription started, version 1 arrives (history, then live).
    await asyncio.to_thread(replica.graphql, SELECT_ELLKAY, tenantId=tenant_id)
    await asyncio.to_thread(write_versions, replica, tenant_id, "k2")

    received = [(await subscriber.next_data("new"))["configurationChanged"] for _ in range(2)]
    assert [(change["version"], change["settings"]["provider"]) for change in received] == [
        (1, "ELLKAY"),
        (2, "ELLKAY"),
    ]
    await subscriber.close()


async def test_a_change_written_through_one_replica_reaches_subscribers_of_the_other(
    replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    reader, writer = replicas
    tenant_id = new_tenant(writer)
    await asyncio.to_thread(reader.wait_for_feed_subscribers, 0)
    subscriber = await TransportWsClient.connect(reader.ws_url, token=reader.token)
    await subscriber.subscribe("live", CONFIGURATION_CHANGED, tenantId=tenant_id)
    await asyncio.to_thread(reader.wait_for_feed_subscribers, 1)

    await asyncio.to_thread(write_versions, writer, tenant_id, "from-the-other-replica")

    change = (await subscriber.next_data("live"))["configurationChanged"]
    assert (change["version"], change["settings"]["ehr"]["waitlistingStatusName"]) == (
        2,
        "from-the-other-replica",
    )
    await subscriber.close()


async def test_without_since_version_only_later_changes_arrive(replica: GatewayProcess) -> None:
    tenant_id = new_tenant(replica)
    write_versions(replica, tenant_id, "before")
    await asyncio.to_thread(replica.wait_for_feed_subscribers, 0)
    subscriber = await TransportWsClient.connect(replica.ws_url, token=replica.token)
    await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id)
    await asyncio.to_thread(replica.wait_for_feed_subscribers, 1)

    await asyncio.to_thread(write_versions, replica, tenant_id, "after")

    change = (await subscriber.next_data("1"))["configurationChanged"]
    assert (change["version"], change["settings"]["ehr"]["waitlistingStatusName"]) == (
        3,
        "after",
    )
    await subscriber.close()


async def test_a_dashboard_follows_the_tenants_it_names_on_one_connection(
    replicas: tuple[GatewayProcess, GatewayProcess],
) -> None:
    reader, writer = replicas
    watched = [new_tenant(writer), new_tenant(writer)]
    ignored = new_tenant(writer)
    await asyncio.to_thread(reader.wait_for_feed_subscribers, 0)  # earlier tests' are gone
    dashboard = await TransportWsClient.connect(reader.ws_url, token=reader.token)
    await dashboard.subscribe("some", CONFIGURATION_CHANGES, tenantIds=watched)
    await dashboard.subscribe("all", CONFIGURATION_CHANGES)
    await asyncio.to_thread(reader.wait_for_feed_subscribers, 2)

    for tenant_id in [ignored, *watched]:
        await asyncio.to_thread(write_versions, writer, tenant_id, "v2")

    by_operation: dict[str, list[tuple[str, int]]] = {"some": [], "all": []}
    while len(by_operation["some"]) < 2 or len(by_operation["all"]) < 3:
        message = await dashboard.receive()
        assert message["type"] == "next", message
        change = message["payload"]["data"]["configurationChanges"]
        by_operation[message["id"]].append((change["tenantId"], change["version"]))
    assert sorted(by_operation["some"]) == sorted((tenant, 2) for tenant in watched)
    assert sorted(by_operation["all"]) == sorted((tenant, 2) for tenant in [ignored, *watched])
    await dashboard.close()


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"tenantId": "never-configured"}, "NOT_FOUND", ["tenantId"]),
        ({"tenantId": "bad id!"}, "INVALID_TENANT_ID", ["tenantId"]),
        ({"sinceVersion": -1}, "OUT_OF_RANGE", ["sinceVersion"]),
        ({"sinceVersion": 99}, "OUT_OF_RANGE", ["sinceVersion"]),
    ],
)
@pytest.mark.parametrize("client", [TransportWsClient, LegacyWsClient], ids=lambda c: c.protocol)
async def test_a_refused_subscription_is_a_protocol_error_and_the_connection_lives_on(
    replica: GatewayProcess,
    client: type[TransportWsClient],
    variables: dict[str, object],
    code: str,
    field: list[str],
) -> None:
    tenant_id = new_tenant(replica)
    subscriber = await client.connect(replica.ws_url, token=replica.token)
    await subscriber.subscribe("bad", CONFIGURATION_CHANGED, **{"tenantId": tenant_id, **variables})

    message = await subscriber.receive()
    assert (message["type"], message["id"]) == ("error", "bad")
    errors = message["payload"] if isinstance(message["payload"], list) else [message["payload"]]
    assert errors[0]["extensions"] == {"code": code, "field": field}

    await subscriber.subscribe("good", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    assert (await subscriber.next_data("good"))["configurationChanged"]["version"] == 1
    await subscriber.close()


async def test_a_history_entry_with_a_text_version_is_dropped_and_the_feed_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    """A database writer inserts one history entry, for any tenant, whose ``version`` is text.
    The change feed drops it as an entry that does not verify and goes on: another tenant's
    subscriber still receives its next version. A database of its own: the entry stays."""
    database = f"feed_{uuid.uuid4().hex[:8]}"
    gateway = GatewayProcess(
        tmp_path,
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=database,
        EHRGW_ENCRYPTION_KEY=new_key(),
    )
    try:
        subscribed, forged_in = new_tenant(gateway), new_tenant(gateway)
        subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
        await subscriber.subscribe("subscribed", CONFIGURATION_CHANGED, tenantId=subscribed)
        await asyncio.to_thread(gateway.wait_for_feed_subscribers, 1)
        client: MongoClient[dict[str, Any]] = MongoClient(database_url)
        try:
            client[database]["tenant_settings_history"].insert_one(
                {"tenantId": forged_in, "version": "x", "changedAt": datetime.now(UTC)}
            )
        finally:
            client.close()

        await asyncio.to_thread(write_versions, gateway, subscribed, "after-the-forgery")
        try:
            change = (await subscriber.next_data("subscribed", within=30))["configurationChanged"]
        except TimeoutError:
            change = None
        await subscriber.close()
    finally:
        gateway.stop()

    assert change is not None, "the other tenant's subscriber received nothing in 30 s"
    assert change["version"] == 2, change
