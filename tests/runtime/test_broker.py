"""The in-process broker that fans stored versions out to this process's subscribers, and
open_changes, which follows a tenant from its history into the broker's live versions."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.resolvers.changes import open_changes
from ehr_gateway.resolvers.context import Context, Deployment
from ehr_gateway.runtime.broker import Broker, Subscription
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import HistoryEntry, SettingsRepository
from ehr_gateway.storage.secrets import SecretBox

_ticks = itertools.count()
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def version(tenant_id: str, number: int) -> HistoryEntry:
    """Version ``number`` of a tenant, stored after every version made before it."""
    return HistoryEntry(
        tenant_id=tenant_id,
        version=number,
        changed_at=_EPOCH + timedelta(milliseconds=next(_ticks)),
        actor="test",
        changed_blocks=(SettingsBlock.PROVIDER,),
        changed_paths=("provider",),
        settings=TenantSettings(tenant_id=tenant_id, version=number, provider=EhrProvider.EPIC),
    )


async def drain(subscription: Subscription) -> list[tuple[str, int, bool]]:
    """Everything queued for ``subscription``, as (tenant, version, versions_skipped)."""
    received = []
    while subscription.pending:
        delivery = await asyncio.wait_for(subscription.next(), 1)
        assert delivery is not None
        received.append(
            (delivery.entry.tenant_id, delivery.entry.version, delivery.versions_skipped)
        )
    return received


async def test_a_version_reaches_the_subscribers_of_its_tenant_and_of_every_tenant() -> None:
    broker = Broker()
    of_a = broker.subscribe(["a"])
    of_b = broker.subscribe(["b"])
    of_a_and_b = broker.subscribe(["a", "b"])
    of_everything = broker.subscribe(None)
    assert broker.subscribers == 4

    for entry in (version("a", 1), version("b", 1), version("c", 1)):
        broker.publish(entry)

    assert await drain(of_a) == [("a", 1, False)]
    assert await drain(of_b) == [("b", 1, False)]
    assert await drain(of_a_and_b) == [("a", 1, False), ("b", 1, False)]
    assert await drain(of_everything) == [("a", 1, False), ("b", 1, False), ("c", 1, False)]


async def test_versions_arrive_in_the_order_they_were_published() -> None:
    broker = Broker()
    dashboard = broker.subscribe(None)
    published = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2), ("c", 1), ("a", 4)]

    for tenant_id, number in published:
        broker.publish(version(tenant_id, number))

    assert await drain(dashboard) == [(tenant, number, False) for tenant, number in published]


async def test_a_subscriber_that_falls_behind_gets_the_newest_version_of_each_tenant() -> None:
    broker = Broker(bound=4)
    slow = broker.subscribe(None)
    fast = broker.subscribe(None)
    published = [("a", 1), ("c", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3)]

    fast_received = []
    for tenant_id, number in published:
        broker.publish(version(tenant_id, number))
        fast_received += await drain(fast)

    assert fast_received == [(tenant, number, False) for tenant, number in published]
    # The fifth version overflowed the slow queue: it was collapsed to c1, a2 and b2, in the order
    # they were stored, a2 and b2 flagged; a3 came after the collapse.
    assert await drain(slow) == [("c", 1, False), ("a", 2, True), ("b", 2, True), ("a", 3, False)]


async def test_collapsing_keeps_the_newest_version_when_older_ones_are_published_again() -> None:
    """After a reconnect the change feed publishes recent history again ("subscribers drop
    versions they already have"), so a lagging queue can hold a tenant's newest version
    followed by older copies. Collapsing must not drop the newest version."""
    broker = Broker(bound=4)
    lagging = broker.subscribe(["a"])
    stored = [version("a", number) for number in (1, 2, 3, 4)]
    for entry in stored:
        broker.publish(entry)

    for entry in stored[1:3]:  # the feed's catch-up after a reconnect: versions 2 and 3 again
        broker.publish(entry)

    received = await drain(lagging)
    assert max(number for _, number, _ in received) == 4, received


async def test_versions_published_again_after_a_reconnect_do_not_make_a_subscriber_skip() -> None:
    """After a reconnect the feed publishes the last seconds of history again: on a busy tenant,
    more versions than a queue holds, followed by the versions the stream lost. A subscriber
    that had the first ones gets the lost ones, all of them, not a collapse of copies."""
    broker = Broker(bound=4)
    follower = broker.subscribe(["a"])
    stored = [version("a", number) for number in range(1, 10)]
    for entry in stored[:6]:  # streamed live, and taken as they come
        broker.publish(entry)
        assert await drain(follower) == [("a", entry.version, False)]

    for entry in stored:  # the catch-up: 1 to 6 again, then 7 to 9, which the stream lost
        broker.publish(entry)

    assert await drain(follower) == [("a", 7, False), ("a", 8, False), ("a", 9, False)]


async def test_unsubscribing_stops_delivery() -> None:
    broker = Broker()
    leaving = broker.subscribe(["a"])
    staying = broker.subscribe(["a"])
    broker.publish(version("a", 1))

    broker.unsubscribe(leaving)
    broker.publish(version("a", 2))

    assert await asyncio.wait_for(leaving.next(), 1) is None
    assert await drain(staying) == [("a", 1, False), ("a", 2, False)]
    assert broker.subscribers == 1


async def test_closing_the_broker_ends_waiting_subscribers_and_refuses_new_ones() -> None:
    broker = Broker()
    waiting = [
        asyncio.create_task(subscription.next())
        for subscription in (broker.subscribe(["a"]), broker.subscribe(None))
    ]
    await asyncio.sleep(0)  # both are waiting for a version

    broker.close()

    assert await asyncio.wait_for(asyncio.gather(*waiting), 1) == [None, None]
    assert broker.subscribers == 0
    late = broker.subscribe(["a"])
    broker.publish(version("a", 1))
    assert await asyncio.wait_for(late.next(), 1) is None


@pytest.fixture
async def context(database_url: str, tmp_path: Path) -> AsyncIterator[Context]:
    """What resolvers get, built as the app builds it, on a database of this test's own."""
    client = connect(database_url)
    box = SecretBox.from_data_dir(tmp_path)
    repository = SettingsRepository(client, f"broker_{uuid.uuid4().hex[:12]}", box.chain)
    await repository.prepare()
    yield Context(
        repository,
        box,
        Deployment(public_base_url="https://x.test", identifier_defaults=IdentifierDefaults()),
        Broker(),
    )
    await client.close()


async def store(context: Context, tenant_id: str, number: int) -> None:
    settings = TenantSettings(
        tenant_id=tenant_id, provider=[EhrProvider.EPIC, EhrProvider.ATHENA][number % 2]
    )
    stored = await context.repository.save(
        settings, base_version=number - 1, actor="test", changed_blocks=[SettingsBlock.PROVIDER],
        changed_paths=["provider"],
    )  # fmt: skip
    assert isinstance(stored, TenantSettings) and stored.version == number


async def test_versions_the_feed_lost_are_fetched_from_history_in_order(
    context: Context,
) -> None:
    await store(context, "tenant-1", 1)
    deliveries = await open_changes(context, ["tenant-1"], 0, argument="tenantId")
    first = await asyncio.wait_for(anext(deliveries), 5)
    assert first.entry.version == 1
    for number in (2, 3, 4):
        await store(context, "tenant-1", number)
    stored = await context.repository.versions_after("tenant-1", 0)
    assert [entry.version for entry in stored] == [1, 2, 3, 4]

    # The feed delivers version 1 again, then version 4: it lost 2 and 3 while it was broken.
    context.broker.publish(stored[0])
    context.broker.publish(stored[3])

    received = [await asyncio.wait_for(anext(deliveries), 5) for _ in range(3)]
    assert [(d.entry.version, d.versions_skipped) for d in received] == [
        (2, False), (3, False), (4, False),
    ]  # fmt: skip
    assert [d.entry.settings.provider for d in received] == [
        EhrProvider.EPIC, EhrProvider.ATHENA, EhrProvider.EPIC,
    ]  # fmt: skip
    await deliveries.aclose()  # type: ignore[attr-defined]
    assert context.broker.subscribers == 0


async def test_a_subscriber_that_asked_for_every_version_gets_what_its_full_queue_dropped(
    context: Context,
) -> None:
    context.broker = Broker(bound=4)
    await store(context, "tenant-2", 1)
    every_version = await open_changes(context, ["tenant-2"], 1, argument="tenantId")
    newest_only = await open_changes(context, ["tenant-2"], None, argument="tenantId")

    # Eleven versions arrive while neither subscriber reads: more than their queues hold.
    for number in range(2, 13):
        await store(context, "tenant-2", number)
        stored = await context.repository.version("tenant-2", number)
        assert stored is not None
        context.broker.publish(stored)

    received = [await asyncio.wait_for(anext(every_version), 5) for _ in range(11)]
    assert [(d.entry.version, d.versions_skipped) for d in received] == [
        (number, False) for number in range(2, 13)
    ]
    # The other skips ahead, flagged, each time its queue overflows (at 6, then at 10).
    received = [await asyncio.wait_for(anext(newest_only), 5) for _ in range(3)]
    assert [(d.entry.version, d.versions_skipped) for d in received] == [
        (10, True), (11, False), (12, False),
    ]  # fmt: skip
    for deliveries in (every_version, newest_only):
        await deliveries.aclose()  # type: ignore[attr-defined]
    assert context.broker.subscribers == 0
