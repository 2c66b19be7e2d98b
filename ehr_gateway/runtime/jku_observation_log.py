"""The JKUs the base path URLs observed, in this process: rate limits on the route, and the
observations counted in memory between writes to the store (storage.observations)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.ehr.jwks import TokenHeaders
from ehr_gateway.storage.observations import Observation, ObservedJkuStore, Variant, combine, kept

logger = logging.getLogger("ehr_gateway.jku")

# At most one write of a tenant's observations per this many seconds: requests in between are
# counted in memory and written together.
WRITE_INTERVAL_S = 5.0
# Token buckets: a tenant's base path URL takes a burst of TENANT_BURST requests, then
# TENANT_RATE a second; one client address at one gateway id, ADDRESS_BURST and ADDRESS_RATE.
# Keyed by the id too: behind a load balancer every client has the same address, and a flood at
# one id must not silence Epic at another.
TENANT_BURST, TENANT_RATE = 30, 1.0
ADDRESS_BURST, ADDRESS_RATE = 60, 2.0
# Lookups of ids not in the directory of Epic gateway ids (EpicGatewayIds) that turn out to
# belong to no Epic tenant, in this process. The directory holds every current id (loaded at
# start, kept current by the change feed), so only an id created moments ago on another replica
# needs such a lookup; made-up ones share this budget, which no id in the directory spends.
MISS_BURST, MISS_RATE = 100, 10.0
# Buckets kept; the least recently used are forgotten (a full bucket again).
MAX_BUCKETS = 10_000


MISSES = "misses"


class Buckets:
    """Token buckets by key, for rate limits. Bounded: at most ``max_keys`` are kept."""

    def __init__(self, burst: int, rate: float, max_keys: int = MAX_BUCKETS) -> None:
        self._burst = burst
        self._rate = rate
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def peek(self, key: str, now: float | None = None) -> bool:
        """Whether ``key`` has a token now (without taking it)."""
        now = time.monotonic() if now is None else now
        tokens, since = self._buckets.get(key, (float(self._burst), now))
        return min(float(self._burst), tokens + (now - since) * self._rate) >= 1

    def take(self, key: str, now: float | None = None) -> bool:
        """Whether ``key`` may make one more request now (and take its token)."""
        now = time.monotonic() if now is None else now
        tokens, since = self._buckets.pop(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - since) * self._rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return allowed


def epic_gateway_id(settings: TenantSettings) -> str | None:
    """The external gateway id Epic calls this tenant at, if it is on Epic and has one."""
    if settings.provider is not EhrProvider.EPIC:
        return None
    gateway = settings.provider_settings(EhrProvider.EPIC).external_gateway
    return None if gateway is None else gateway.external_gateway_id


class EpicGatewayIds:
    """Every Epic tenant's external gateway id, in memory: loaded at start and kept current by
    the change feed, so that Epic's id is answered however many made-up ids are sent, and a
    made-up one costs no database read. Only which lookups are charged to the budget of unknown
    ids depends on it: the lookup itself checks the tenant's settings (the start-up read takes
    each id from its document unchecked; checking each seal there would read every Epic
    tenant's whole document). One entry per Epic tenant: about 310 bytes with the
    usual id lengths, 31 MB per 100,000 tenants (tracemalloc, 24-character gateway ids)."""

    def __init__(self) -> None:
        self._tenants: dict[str, str] = {}  # gateway id -> tenant id
        # tenant id -> (settings version, gateway id or None): the feed may replay versions
        # older than what the start-up read saw, and an older version never wins.
        self._ids: dict[str, tuple[int, str | None]] = {}

    def load(self, found: dict[str, tuple[str, int]]) -> None:
        """Ids read from the database: gateway id -> (tenant id, settings version)."""
        for gateway_id, (tenant_id, version) in found.items():
            self.set(tenant_id, version, gateway_id)

    def set(self, tenant_id: str, version: int, gateway_id: str | None) -> None:
        """The tenant's Epic gateway id as of ``version`` (None: none, or not on Epic)."""
        earlier = self._ids.get(tenant_id)
        if earlier is not None:
            if earlier[0] > version:
                return
            # Unless the id was found to be another tenant's since (the start-up read takes ids
            # from documents unchecked: one may have been copied into this tenant's).
            if earlier[1] is not None and self._tenants.get(earlier[1]) == tenant_id:
                del self._tenants[earlier[1]]
        self._ids[tenant_id] = (version, gateway_id)
        if gateway_id is not None:
            self._tenants[gateway_id] = tenant_id

    def forget(self, gateway_id: str) -> None:
        """A lookup of ``gateway_id`` found no tenant whose checked settings hold it (an id
        edited into a document, read at start unchecked): from now on it is charged to the
        budget of unknown ids like any made-up one."""
        self._tenants.pop(gateway_id, None)

    def __contains__(self, gateway_id: str) -> bool:
        return gateway_id in self._tenants

    def __len__(self) -> int:
        return len(self._tenants)


class JkuObservations:
    """The observations of this process: written to the store at most once per tenant per
    WRITE_INTERVAL_S; between writes they are counted here, and shown as if stored."""

    def __init__(self, store: ObservedJkuStore, interval_s: float = WRITE_INTERVAL_S) -> None:
        self.store = store
        self._interval_s = interval_s
        self._pending: dict[str, dict[str, Observation]] = {}
        self._written_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.tenants = Buckets(TENANT_BURST, TENANT_RATE)
        self.addresses = Buckets(ADDRESS_BURST, ADDRESS_RATE)
        self.misses = Buckets(MISS_BURST, MISS_RATE, max_keys=1)
        self.gateway_ids = EpicGatewayIds()

    def may_look_up(self, gateway_id: str) -> bool:
        """Whether a lookup of ``gateway_id`` may go to the database now: always for an id of
        the directory, within the shared budget for any other."""
        return gateway_id in self.gateway_ids or self.misses.peek(MISSES)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_when_due())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for tenant_id in list(self._pending):
            await self._flush(tenant_id)

    async def record(self, tenant_id: str, peeked: TokenHeaders, token: str) -> None:
        """Count a request whose (unverified) ``token`` named ``peeked.jku``."""
        now = datetime.now(UTC)
        variant = Variant(peeked.kid, peeked.alg, peeked.issuer, token, now, 1)
        seen = Observation(peeked.jku, (variant,), now, now, 1)
        pending = self._pending.setdefault(tenant_id, {})
        earlier = pending.get(seen.url)
        pending[seen.url] = seen if earlier is None else earlier.merged(seen)
        # Only what the store would keep can survive the merge: memory stays bounded too.
        self._pending[tenant_id] = {kept_.url: kept_ for kept_ in kept(list(pending.values()))}
        if time.monotonic() - self._written_at.get(tenant_id, float("-inf")) >= self._interval_s:
            # A write the database refuses keeps the observation for the next one; the request
            # is still accepted.
            with contextlib.suppress(Exception):
                await self._flush(tenant_id)

    async def observed(self, tenant_id: str, *, tokens: bool = True) -> list[Observation]:
        """The tenant's observations, the first seen first: stored, plus those of this process
        not yet written. Without ``tokens``, the stored ones are read without their tokens."""
        stored = await self.store.read(tenant_id, tokens=tokens)
        return combine(stored, list(self._pending.get(tenant_id, {}).values()))

    async def _flush(self, tenant_id: str) -> None:
        fresh = self._pending.pop(tenant_id, None)
        if not fresh:
            return
        self._written_at[tenant_id] = time.monotonic()
        try:
            await self.store.merge(tenant_id, list(fresh.values()))
        except Exception:
            # Kept for the next write: an observation is not lost to a database hiccup, and the
            # request that carried it has been answered already.
            logger.warning("observed JKU of a tenant not stored; kept for the next write")
            again = self._pending.setdefault(tenant_id, {})
            for url, seen in fresh.items():
                later = again.get(url)
                again[url] = seen if later is None else seen.merged(later)
            raise

    async def _flush_when_due(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s / 2)
            now = time.monotonic()
            for tenant_id in list(self._pending):
                if now - self._written_at.get(tenant_id, float("-inf")) >= self._interval_s:
                    with contextlib.suppress(Exception):
                        await self._flush(tenant_id)
            # Tenants not written for a while need no memory of when they were.
            for tenant_id, at in list(self._written_at.items()):
                if now - at >= self._interval_s and tenant_id not in self._pending:
                    del self._written_at[tenant_id]
