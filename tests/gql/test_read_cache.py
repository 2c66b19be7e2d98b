"""Settings reads are served from the in-process caches, and never wrongly: a write is seen at once
on the replica that made it and within the change feed's delay on another, a cached answer is
never given to a caller who may not see it, and only reads are kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.runtime.settings_cache import SettingsCache
from ehr_gateway.server.response_cache import Cached, ResponseCache
from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.database_proxy import HeldReplaces, listening, two_replicas_behind
from tests.faults.test_idempotent_retries import ENCRYPTION_KEY, new_tenant, post, store_raw
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED
from tests.processes import GatewayProcess, TransportWsClient

READ = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version provider
    ehr { ... on EllkaySettings { waitlistingStatusName } }
  }
}
"""
SELECT_ELLKAY = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: ELLKAY) {
    ... on SettingsSaved { settings { version } }
  }
}
"""
SET_KEY = """
mutation SetKey($tenantId: ID!, $key: String!) {
  updateEhrSettings(tenantId: $tenantId, input: {ellkay: {waitlistingStatusName: $key}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""
# Generous for a loaded machine: the feed itself polls every 20 ms.
FEED_DELAY_S = 5
DATABASE = "read_cache"
# How long a held document replace stays on its way to the database: far past the write's
# deadline and the test, so the document shows the version before while the test reads.
HOLD_S = 300
WITHIN_S = 60
READ_VERSION = """
query ReadVersion($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr { ... on EllkaySettings { waitlistingStatusName } }
  }
}
"""


async def read(gateway: Gateway, tenant_id: str) -> dict[str, Any] | None:
    settings: dict[str, Any] | None = (await gateway.execute(READ, tenantId=tenant_id))[
        "integrationSettings"
    ]
    return settings


async def read_until(
    gateway: Gateway, tenant_id: str, version: int, within: float = FEED_DELAY_S
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        settings = await read(gateway, tenant_id)
        if settings is not None and settings["version"] == version:
            return settings
        assert time.monotonic() < deadline, f"still {settings} after {within}s"
        await asyncio.sleep(0.02)


async def test_a_write_is_read_back_at_once_on_the_replica_that_made_it(
    gateway: Gateway, tenant_id: str
) -> None:
    assert await read(gateway, tenant_id) is None  # "no settings" is kept too ...
    await gateway.execute(SELECT_ELLKAY, tenantId=tenant_id)
    for version, key in enumerate(["first", "second", "third"], start=2):
        await read(gateway, tenant_id)  # cached ...
        await gateway.execute(SET_KEY, tenantId=tenant_id, key=key)

        # ... and forgotten by the write itself, not later by the change feed.
        assert await read(gateway, tenant_id) == {
            "version": version,
            "provider": "ELLKAY",
            "ehr": {"waitlistingStatusName": key},
        }


async def test_a_write_on_another_replica_is_seen_within_the_change_feed_delay(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for reader in open_gateway(config):
        async for writer in open_gateway(config):
            assert await read(reader, tenant_id) is None
            assert await read(reader, tenant_id) is None  # served from the cache

            await writer.execute(SELECT_ELLKAY, tenantId=tenant_id)
            assert (await read_until(reader, tenant_id, 1))["provider"] == "ELLKAY"

            for version in (2, 3):
                await read(reader, tenant_id)
                await writer.execute(SET_KEY, tenantId=tenant_id, key=f"key-{version}")
                settings = await read_until(reader, tenant_id, version)
                assert settings["ehr"] == {"waitlistingStatusName": f"key-{version}"}


@pytest.fixture
async def slow_link(database: EmbeddedMongo) -> AsyncIterator[HeldReplaces]:
    """Between the replicas and the database: holds a named tenant's document replaces."""
    async with listening(HeldReplaces(database.port, HOLD_S)) as holding:
        yield holding


@pytest.fixture
async def replicas_behind_a_slow_link(
    slow_link: HeldReplaces, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    env = {"EHRGW_ENCRYPTION_KEY": ENCRYPTION_KEY, "EHRGW_DATABASE": DATABASE}
    async with two_replicas_behind(slow_link, tmp_path, **env) as both:
        yield both


async def _read_version(replica: GatewayProcess, tenant_id: str) -> dict[str, Any]:
    body = await post(replica.url, replica.token, READ_VERSION, tenantId=tenant_id)
    assert "errors" not in body, body
    settings: dict[str, Any] = body["data"]["integrationSettings"]
    return settings


async def test_a_replica_reads_back_the_version_it_answered_saved_before_its_document_shows_it(
    slow_link: HeldReplaces, replicas_behind_a_slow_link: tuple[GatewayProcess, GatewayProcess]
) -> None:
    replica, _ = replicas_behind_a_slow_link
    tenant_id = await asyncio.to_thread(new_tenant, replica)
    slow_link.tenant = tenant_id.encode()

    saved = await store_raw(replica, tenant_id, "saved", "saved-key")
    await asyncio.wait_for(slow_link.held.wait(), WITHIN_S)
    assert saved["data"]["updateEhrSettings"]["settings"]["version"] == 2, saved

    assert await _read_version(replica, tenant_id) == {
        "version": 2,
        "ehr": {"waitlistingStatusName": "saved"},
    }
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{replica.url}/readyz")).status_code == 200


async def test_a_replica_reads_a_version_its_change_feed_announced_before_its_document_shows_it(
    slow_link: HeldReplaces, replicas_behind_a_slow_link: tuple[GatewayProcess, GatewayProcess]
) -> None:
    writer, reader = replicas_behind_a_slow_link
    tenant_id = await asyncio.to_thread(new_tenant, writer)
    assert (await _read_version(reader, tenant_id))["version"] == 1  # and cached
    subscriber = await TransportWsClient.connect(reader.ws_url, token=reader.token)
    await subscriber.subscribe("live", CONFIGURATION_CHANGED, tenantId=tenant_id)
    await asyncio.to_thread(reader.wait_for_feed_subscribers, 1)
    slow_link.tenant = tenant_id.encode()

    await store_raw(writer, tenant_id, "announced", "announced-key")
    await asyncio.wait_for(slow_link.held.wait(), WITHIN_S)
    change = (await subscriber.next_data("live", within=WITHIN_S))["configurationChanged"]
    assert change["version"] == 2
    await subscriber.close()

    assert await _read_version(reader, tenant_id) == {
        "version": 2,
        "ehr": {"waitlistingStatusName": "announced"},
    }


async def test_a_cached_answer_is_never_given_to_a_caller_who_may_not_see_it(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_ELLKAY, tenantId=tenant_id)
    await gateway.execute(SET_KEY, tenantId=tenant_id, key="staff-only")
    for _ in range(2):
        assert (await read(gateway, tenant_id) or {})["version"] == 2  # cached for staff

    other_tenant = gateway.as_caller(tenants=["someone-else"], roles=["viewer"])
    refused = await other_tenant.post(READ, tenantId=tenant_id)
    assert refused["data"] == {"integrationSettings": None}
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    no_read = gateway.as_caller(tenants=[tenant_id], roles=["editor"])  # editors may read ...
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    for caller in (no_read, viewer):
        assert (await read(caller, tenant_id) or {})["ehr"] == {
            "waitlistingStatusName": "staff-only"
        }
    # ... and a caller with no role at all on the tenant may not, cache or no cache.
    nobody = gateway.as_caller(tenants=[tenant_id], roles=[])
    for _ in range(2):
        denied = await nobody.post(READ, tenantId=tenant_id)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_mutations_are_never_answered_from_the_cache(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_ELLKAY, tenantId=tenant_id)
    versions = []
    for key in ("same", "other", "same", "other"):
        saved = await gateway.execute(SET_KEY, tenantId=tenant_id, key=key)
        versions.append(saved["updateEhrSettings"]["settings"]["version"])

    assert versions == [2, 3, 4, 5]


async def cached_responses(gateway: Gateway) -> float:
    metrics = (await gateway.client.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith('ehrgw_cache_entries{cache="responses"}'):
            return float(line.split()[-1])
    raise AssertionError(metrics)


async def test_only_complete_answers_to_reads_are_kept(gateway: Gateway, tenant_id: str) -> None:
    both = """
    query Both($tenantId: ID!, $other: ID!) {
      integrationSettings(tenantId: $tenantId) { version }
      other: integrationSettings(tenantId: $other) { version }
    }
    """
    await gateway.execute(SELECT_ELLKAY, tenantId=tenant_id)
    caller = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])

    partly_refused = await caller.post(both, tenantId=tenant_id, other="another-tenant")
    assert partly_refused["data"]["integrationSettings"] == {"version": 1}
    assert partly_refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await cached_responses(gateway) == 0
    await gateway.execute(SET_KEY, tenantId=tenant_id, key="not a read")
    assert await cached_responses(gateway) == 0

    await caller.post(both, tenantId=tenant_id, other=tenant_id)
    assert await cached_responses(gateway) == 1


def live_caches(**limits: int) -> tuple[SettingsCache, ResponseCache]:
    settings = SettingsCache(live=lambda: True)
    return settings, ResponseCache(settings, **limits)


def test_the_response_cache_keeps_within_its_memory_and_drops_what_a_change_outdates() -> None:
    settings, responses = live_caches(max_bytes=250)
    for n in range(3):
        responses.put((b"q" * 50, n), Cached(b"r" * 50, "query:x"), {f"t{n}": 1})
    # 100 bytes each: the third pushed the first out.
    assert [responses.get((b"q" * 50, n)) is not None for n in range(3)] == [False, True, True]

    settings.changed("t1", 2)
    assert responses.get((b"q" * 50, 1)) is None
    assert responses.get((b"q" * 50, 2)) is not None

    # An answer computed from version 1 after version 2 became known is not kept.
    responses.put((b"late", 0), Cached(b"old", "query:x"), {"t1": 1})
    assert responses.get((b"late", 0)) is None
    assert len(responses) == 1


def test_the_versions_known_of_changed_tenants_are_bounded_like_the_cache() -> None:
    """Every tenant that changes is remembered with its newest version (so a read that ends
    after a newer version became known is not kept): the most recently changed, as many as the
    cache keeps, not every tenant that ever changed."""
    settings = SettingsCache(live=lambda: True, capacity=2)
    settings.changed("first", 5)
    settings.changed("second", 1)
    assert not settings.is_current("first", 4)

    settings.changed("third", 1)

    assert settings.is_current("first", 4)  # forgotten: two tenants changed since
    assert not settings.is_current("second", 0) and not settings.is_current("third", 0)
    assert settings.changed("first", 5)  # news again


def test_nothing_is_served_while_the_change_feed_is_down() -> None:
    feed_up = True
    settings = SettingsCache(live=lambda: feed_up)
    responses = ResponseCache(settings)
    responses.put((b"q", 0), Cached(b"r", "query:x"), {"t": 1})
    assert responses.get((b"q", 0)) is not None

    feed_up = False

    assert responses.get((b"q", 0)) is None
    assert len(responses) == 0  # and what was kept is gone for good
