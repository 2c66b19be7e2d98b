"""A cache of whole GraphQL responses to settings reads, for the callers that send the same
document again and again (runtime services, admin pages being refreshed).

A response is kept only when every root field of the operation is a pure read of tenant
settings (``gql.operation_record.CACHEABLE_FIELDS``), it carried no error, and the settings it
read are still the newest known. The key is the request body as sent (document, variables and
operation name) and the caller's access (tenants and permissions), so callers who may see
different things never share an entry. An entry is dropped the moment a newer version of a
tenant it read is known (the settings cache tells, from the change feed or a local write), and
nothing is served while the change feed is down.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from ehr_gateway.runtime.settings_cache import SettingsCache

DEFAULT_CAPACITY = 4096
# Memory the kept requests and responses may take in all; the least recently used go first.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes
    operation: str  # the metrics label of the operation that produced it


@dataclass(slots=True)
class _Entry:
    cached: Cached
    tenants: tuple[str, ...]
    size: int


class ResponseCache:
    def __init__(
        self,
        settings: SettingsCache,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._settings = settings
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._by_tenant: dict[str, set[Hashable]] = {}
        settings.on_change(self._forget_tenant)
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[bytes, Hashable]) -> Cached | None:
        if not self._settings.live:
            if self._entries:
                self._clear()
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry.cached

    def put(self, key: tuple[bytes, Hashable], cached: Cached, versions: dict[str, int]) -> None:
        """Keep ``cached``, the response computed from these tenants at these versions,
        unless one of them has changed since. ``key`` is the request body and the access."""
        if len(cached.body) > MAX_RESPONSE_BYTES or not versions:
            return
        if not all(self._settings.is_current(t, v) for t, v in versions.items()):
            return
        self._drop(key)
        tenants = tuple(versions)
        size = len(key[0]) + len(cached.body)
        self._entries[key] = _Entry(cached, tenants, size)
        self._bytes += size
        for tenant_id in tenants:
            self._by_tenant.setdefault(tenant_id, set()).add(key)
        while len(self._entries) > self._capacity or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _forget_tenant(self, tenant_id: str) -> None:
        for key in self._by_tenant.pop(tenant_id, set()):
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        for tenant_id in entry.tenants:
            keys = self._by_tenant.get(tenant_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tenant[tenant_id]

    def _clear(self) -> None:
        self._entries.clear()
        self._by_tenant.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
