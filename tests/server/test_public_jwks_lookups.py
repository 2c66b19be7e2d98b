"""The public JWKS route answers anyone, without a token. Asking it for made-up tenants must cost
the gateway no more than a database read each: a tenant without settings is not kept in the
settings cache (where it would push real tenants out), and an id that is not a tenant id is a
404 without any read."""

from __future__ import annotations

import uuid

from tests.conftest import Gateway
from tests.documents import GENERATE_SIGNING_KEY, SELECT_PROVIDER

ILL_FORMED = ["a" * 65, "-leading-dash", "acme%00", "acme%0a", "%2e%2e", "acme%20corp"]


async def settings_cache(gateway: Gateway) -> dict[str, float]:
    """The settings cache's entries, hits and misses, from /metrics."""
    samples = {}
    for line in (await gateway.client.get("/metrics")).text.splitlines():
        if 'cache="settings"' in line:
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return {
        "entries": samples['ehrgw_cache_entries{cache="settings"}'],
        "hits": samples['ehrgw_cache_lookups_total{cache="settings",result="hit"}'],
        "misses": samples['ehrgw_cache_lookups_total{cache="settings",result="miss"}'],
    }


async def jwks(gateway: Gateway, tenant_id: str) -> int:
    response = await gateway.client.get(f"/tenants/{tenant_id}/.well-known/jwks.json")
    return response.status_code


async def test_made_up_tenants_take_no_settings_cache_entries(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)
    assert await jwks(gateway, tenant_id) == 200  # read, and kept
    before = await settings_cache(gateway)

    statuses = {await jwks(gateway, f"rnd{uuid.uuid4().hex}") for _ in range(300)}
    after = await settings_cache(gateway)

    assert statuses == {404}
    assert after["misses"] - before["misses"] == 300  # one database read each ...
    assert after["entries"] == before["entries"]  # ... and nothing kept in the settings cache
    assert await jwks(gateway, tenant_id) == 200
    assert (await settings_cache(gateway))["hits"] - after["hits"] == 1  # still cached


async def test_an_id_that_is_not_a_tenant_id_is_a_404_without_a_read(gateway: Gateway) -> None:
    before = await settings_cache(gateway)

    statuses = [await jwks(gateway, sent) for sent in ILL_FORMED]
    after = await settings_cache(gateway)

    assert statuses == [404] * len(ILL_FORMED)
    assert after == before
