"""In-process fan-out of stored versions to this process's subscribers.

Each subscriber has a bounded queue, so a slow one never delays the others or grows memory
without bound. Configuration is state: when a subscriber falls more than ``bound`` versions
behind, its queue is collapsed to the newest version of each tenant, flagged as having skipped
versions.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ehr_gateway.storage.repository import HistoryEntry

DEFAULT_BOUND = 64


@dataclass(frozen=True, slots=True)
class Delivery:
    entry: HistoryEntry
    versions_skipped: bool = False


class Subscription:
    def __init__(self, tenants: frozenset[str] | None, bound: int) -> None:
        self.tenants = tenants  # None: every tenant
        self._bound = bound
        self._queue: deque[HistoryEntry] = deque()
        self._skipped: set[str] = set()
        self._offered: dict[str, int] = {}  # the newest version offered, by tenant
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, entry: HistoryEntry) -> None:
        if self._closed:
            return
        if entry.version <= self._offered.get(entry.tenant_id, 0):
            # Offered before: the feed's catch-up after a reconnect publishes the last seconds
            # of history again. Queued, these copies would count against the bound and collapse
            # the queue as if this subscriber were slow, dropping versions it lacks. (One older
            # than a version offered is not lost: the follower fetches gaps from history.)
            return
        self._offered[entry.tenant_id] = entry.version
        self._queue.append(entry)
        if len(self._queue) > self._bound:
            self._collapse()
        self._ready.set()

    def _collapse(self) -> None:
        # The highest version, not the last offered: the feed's catch-up after a reconnect
        # publishes recent versions again.
        newest: dict[str, HistoryEntry] = {}
        for entry in self._queue:
            kept = newest.get(entry.tenant_id)
            if kept is not None:
                self._skipped.add(entry.tenant_id)
                if kept.version >= entry.version:
                    continue
            newest[entry.tenant_id] = entry
        self._queue = deque(sorted(newest.values(), key=lambda entry: entry.changed_at))

    async def next(self) -> Delivery | None:
        """The next delivery, or None once the subscription is closed."""
        while not self._queue:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        entry = self._queue.popleft()
        skipped = entry.tenant_id in self._skipped
        self._skipped.discard(entry.tenant_id)
        return Delivery(entry, skipped)

    def close(self) -> None:
        self._closed = True
        self._queue.clear()
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._queue)


class Broker:
    def __init__(self, bound: int = DEFAULT_BOUND) -> None:
        self.bound = bound
        self._by_tenant: dict[str, set[Subscription]] = {}
        self._everything: set[Subscription] = set()
        self._closed = False

    def subscribe(self, tenants: Iterable[str] | None) -> Subscription:
        subscription = Subscription(None if tenants is None else frozenset(tenants), self.bound)
        if self._closed:
            subscription.close()
        elif subscription.tenants is None:
            self._everything.add(subscription)
        else:
            for tenant in subscription.tenants:
                self._by_tenant.setdefault(tenant, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        if subscription.tenants is None:
            self._everything.discard(subscription)
            return
        for tenant in subscription.tenants:
            subscribers = self._by_tenant.get(tenant)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_tenant[tenant]

    def publish(self, entry: HistoryEntry) -> None:
        for subscription in self._by_tenant.get(entry.tenant_id, ()):
            subscription.offer(entry)
        for subscription in self._everything:
            subscription.offer(entry)

    def close(self) -> None:
        """End every subscription (their streams complete) and refuse new ones."""
        self._closed = True
        for subscription in [
            *self._everything,
            *(s for subs in self._by_tenant.values() for s in subs),
        ]:
            subscription.close()
        self._everything.clear()
        self._by_tenant.clear()

    def _all(self) -> set[Subscription]:
        return self._everything.union(*self._by_tenant.values())

    @property
    def subscribers(self) -> int:
        return len(self._all())
