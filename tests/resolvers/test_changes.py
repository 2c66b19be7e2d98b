"""resolvers/changes.py called directly: following a tenant's settings from sinceVersion
(history first, then live versions from the change feed), and the requests it refuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.changes import (
    MAX_TENANTS_PER_SUBSCRIPTION,
    SubscriptionRefused,
    open_changes,
)
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.settings import select_provider, update_block
from ehr_gateway.runtime.access import Role
from ehr_gateway.runtime.broker import Delivery
from ehr_gateway.runtime.followed_tenants import MAX_FOLLOWED_PER_CONNECTION
from ehr_gateway.storage.change_feed import ChangeFeed
from tests.resolvers.conftest import as_caller
from tests.resolvers.helpers import saved

EPIC = EhrProvider.EPIC
# Not a timing assertion: how long a test waits for a version before it fails instead of hanging.
HANG_GUARD_S = 30


@pytest.fixture
async def feed(context: Context) -> AsyncIterator[ChangeFeed]:
    """The change feed the app runs, publishing to the context's broker."""
    running = ChangeFeed(context.repository, context.broker.publish)
    running.start()
    await asyncio.wait_for(running.running.wait(), HANG_GUARD_S)
    yield running
    await running.stop()


async def write(context: Context, tenant_id: str, name: str) -> int:
    patch = {"context": name}
    return saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, patch, None))


async def next_version(changes: AsyncIterator[Delivery]) -> int:
    delivery = await asyncio.wait_for(anext(changes), HANG_GUARD_S)
    return delivery.entry.version


async def test_a_subscriber_gets_every_version_after_since_version_then_live_ones(
    context: Context, tenant_id: str, feed: ChangeFeed
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    await write(context, tenant_id, "Scheduling")
    await write(context, tenant_id, "Refills")

    changes = await open_changes(context, [tenant_id], 1, argument="tenantId")
    assert [await next_version(changes), await next_version(changes)] == [2, 3]  # history

    await write(context, tenant_id, "Billing")
    delivery = await asyncio.wait_for(anext(changes), HANG_GUARD_S)  # live, from the feed
    assert delivery.entry.version == 4
    assert delivery.entry.settings.providers[EPIC].ehr == {"context": "Billing"}
    await changes.aclose()  # type: ignore[attr-defined]
    assert context.broker.subscribers == 0


async def test_a_tenant_with_no_settings_yet_is_followed_from_0_until_its_first_version(
    context: Context, tenant_id: str, feed: ChangeFeed
) -> None:
    changes = await open_changes(context, [tenant_id], 0, argument="tenantId")
    saved(await select_provider(context, tenant_id, EPIC, 0))
    await write(context, tenant_id, "Scheduling")
    assert [await next_version(changes), await next_version(changes)] == [1, 2]
    await changes.aclose()  # type: ignore[attr-defined]
    assert context.broker.subscribers == 0


async def test_without_since_version_only_later_versions_come(
    context: Context, tenant_id: str, feed: ChangeFeed
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    await write(context, tenant_id, "Scheduling")
    changes = await open_changes(context, [tenant_id], None, argument="tenantId")
    await write(context, tenant_id, "Refills")
    assert await next_version(changes) == 3
    await changes.aclose()  # type: ignore[attr-defined]


async def refusal(context: Context, tenants: Any, since: int | None) -> tuple[tuple[str, ...], str]:
    before = context.broker.subscribers
    with pytest.raises(SubscriptionRefused) as refused:
        await open_changes(context, tenants, since, argument="tenantIds")
    assert context.broker.subscribers == before  # nothing more left subscribed
    return refused.value.error.path, refused.value.error.code


async def test_what_cannot_be_followed_is_refused_by_argument(
    context: Context, tenant_id: str
) -> None:
    assert await refusal(context, [tenant_id], None) == (("tenantId",), "NOT_FOUND")
    saved(await select_provider(context, tenant_id, EPIC, 0))
    assert await refusal(context, [tenant_id], 2) == (("sinceVersion",), "OUT_OF_RANGE")
    assert await refusal(context, [tenant_id], -1) == (("sinceVersion",), "OUT_OF_RANGE")
    assert await refusal(context, ["../x"], None) == (("tenantIds",), "INVALID_TENANT_ID")
    many = [f"t{n}" for n in range(MAX_TENANTS_PER_SUBSCRIPTION + 1)]
    assert await refusal(context, many, None) == (("tenantIds",), "TOO_MANY")


async def test_one_connection_follows_a_bounded_number_of_tenants(context: Context) -> None:
    """A staff or service caller may name any tenant ids, made up or not: together, one
    connection's subscriptions follow at most MAX_FOLLOWED_PER_CONNECTION of them, and ending
    one gives its tenants back."""
    subscriptions = MAX_FOLLOWED_PER_CONNECTION // MAX_TENANTS_PER_SUBSCRIPTION
    following = [
        await open_changes(
            context,
            [f"made-up-{n}-{i}" for i in range(MAX_TENANTS_PER_SUBSCRIPTION)],
            None,
            argument="tenantIds",
        )
        for n in range(subscriptions)
    ]
    # (Two: a subscription to one tenant is refused if the tenant has no settings.)
    two_more = ["one-more", "two-more"]
    assert await refusal(context, two_more, None) == (("tenantIds",), "TOO_MANY")
    assert context.broker.subscribers == subscriptions

    # A client ending its operation cancels the task waiting for the next change.
    waiting = asyncio.create_task(anext(following.pop()))
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    two = await open_changes(context, two_more, None, argument="tenantIds")
    assert context.broker.subscribers == subscriptions
    for changes in (*following, two):
        await changes.aclose()  # type: ignore[attr-defined]


async def test_following_every_tenant_carries_only_the_callers_own(
    context: Context, tenant_id: str, tenant_id_2: str, feed: ChangeFeed
) -> None:
    for tenant in (tenant_id, tenant_id_2):
        saved(await select_provider(context, tenant, EPIC, 0))
    viewer = as_caller(context, [Role.VIEWER], [tenant_id_2])
    changes = await open_changes(viewer, None, None, argument="tenantIds")
    await write(context, tenant_id, "Not yours")
    await write(context, tenant_id_2, "Yours")
    delivery = await asyncio.wait_for(anext(changes), HANG_GUARD_S)
    assert (delivery.entry.tenant_id, delivery.entry.version) == (tenant_id_2, 2)
    await changes.aclose()  # type: ignore[attr-defined]
