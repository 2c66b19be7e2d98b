"""An in-process cache of tenants' current settings, kept current by the change feed.

Runtime services read a tenant's settings on every call; the settings change rarely. The cache
keeps the settings last read of each recently read tenant, and forgets a tenant the moment a
newer version of it is known: from the change feed (any replica's write) or from a write made
here. A read on this replica after a write on another can therefore be stale for at most the
change feed's delay.

A read never answers older than a version this process knows is committed (its history entry,
the commit point, is stored): its own write answered SettingsSaved, or one the feed announced,
while the document's replace is still on its way. It serves that version instead (this
process's own write as stored, or the history entry, which holds the full settings).

The cache serves only while the change feed runs (``live``): while the feed is down nothing
would tell it of changes, so every read goes to the database, and the feed's catch-up after a
reconnect republishes what it missed, which evicts whatever was cached before the break.

Writes start from the same settings (or from those this process last stored) when it has them,
instead of reading the document back; the history insert's compare-and-set refuses a base that
turns out to be behind, and the write is then decided on a database read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ehr_gateway.ehr.blocks import TenantSettings

V = TypeVar("V")
# The settings of a tenant's committed version, from its history entry (None: not found, or it
# does not verify).
LoadVersion = Callable[[str, int], Awaitable[TenantSettings | None]]
DEFAULT_CAPACITY = 10_000
# Tenants found to have no settings are remembered apart, in fewer entries: anyone may ask for a
# made-up tenant (the public JWKS route), and those asks must not push real tenants out.
DEFAULT_ABSENT_CAPACITY = 1_000
NO_SETTINGS = 0  # the version recorded for a tenant that has no settings yet


class SettingsCache:
    def __init__(
        self,
        live: Callable[[], bool] = lambda: False,
        capacity: int = DEFAULT_CAPACITY,
        absent_capacity: int = DEFAULT_ABSENT_CAPACITY,
    ) -> None:
        self._live = live
        self._capacity = capacity
        self._absent_capacity = absent_capacity
        self._entries: OrderedDict[str, TenantSettings] = OrderedDict()
        self._absent: OrderedDict[str, None] = OrderedDict()  # tenants without settings
        # The settings this process last stored of each recently written tenant, for its writes.
        self._written: OrderedDict[str, TenantSettings] = OrderedDict()
        # The newest version known of each tenant that changed recently, as many tenants as the
        # cache keeps (every tenant that ever changed would grow without bound). One forgotten
        # has seen ``capacity`` other tenants change since its own change: far longer than a read
        # or a document's replace in flight, the races this guards against, take.
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._listeners: list[Callable[[str], None]] = []
        self.hits = 0
        self.misses = 0

    @property
    def live(self) -> bool:
        return self._live()

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(tenant_id)`` whenever a newer version of a tenant becomes known."""
        self._listeners.append(listener)

    async def read(
        self,
        tenant_id: str,
        load: Callable[[str], Awaitable[TenantSettings | None]],
        load_version: LoadVersion | None = None,
    ) -> TenantSettings | None:
        """The tenant's settings: from the cache, or ``load``-ed and kept. Never older than a
        version this process knows is committed (``_newer``)."""
        if not self._live():
            self._entries.clear()
            self._absent.clear()
            return await self._newer(tenant_id, await load(tenant_id), load_version)
        cached = self._entries.get(tenant_id)
        if cached is not None:
            self.hits += 1
            self._entries.move_to_end(tenant_id)
            return cached
        if tenant_id in self._absent:
            self.hits += 1
            self._absent.move_to_end(tenant_id)
            return None
        self.misses += 1
        settings = await self._newer(tenant_id, await load(tenant_id), load_version)
        if settings is None:
            if self.is_current(tenant_id, NO_SETTINGS):
                _keep(self._absent, tenant_id, None, self._absent_capacity)
        elif self.is_current(tenant_id, settings.version):
            _keep(self._entries, tenant_id, settings, self._capacity)
        return settings

    async def _newer(
        self, tenant_id: str, read: TenantSettings | None, load_version: LoadVersion | None
    ) -> TenantSettings | None:
        """``read`` (the document), or the newer version this process knows is committed: its
        own write that was answered SettingsSaved, or one the change feed announced, whose
        history entry is stored while the document's replace has not landed yet (held up on
        its way, or its writer died before it). Serving the document then would show a client
        the version before the one it was told was saved. Costs nothing unless a newer version
        is known: one history read then, or none for this process's own write."""
        newest = self._newest.get(tenant_id)
        if newest is None or (read is not None and read.version >= newest):
            return read
        written = self._written.get(tenant_id)
        if written is not None and written.version == newest:
            return written
        if load_version is None:
            return read
        committed = await load_version(tenant_id, newest)
        return read if committed is None else committed

    def write_base(self, tenant_id: str) -> TenantSettings | None:
        """The tenant's settings as last read or stored by this process, if no newer version is
        known: where its next write may start instead of reading the document back. A hint
        only: the history insert's compare-and-set refuses it if it is behind."""
        if not self._live():
            self._written.clear()
            return None
        known = [self._entries.get(tenant_id), self._written.get(tenant_id)]
        current = [s for s in known if s is not None and self.is_current(tenant_id, s.version)]
        return max(current, key=lambda settings: settings.version, default=None)

    def written(self, settings: TenantSettings) -> None:
        """``settings`` were just stored by this process: the next write to the tenant may start
        from them. Reads are not served from them: a read still goes to the database first."""
        tenant_id = settings.tenant_id
        if self.is_current(tenant_id, settings.version):
            self._written[tenant_id] = settings
            self._written.move_to_end(tenant_id)
            if len(self._written) > self._capacity:
                self._written.popitem(last=False)

    def is_current(self, tenant_id: str, version: int) -> bool:
        """Whether ``version`` is still the newest known (a read can finish after the feed
        told of a newer version: what it read must not be kept)."""
        return self._live() and self._newest.get(tenant_id, version) <= version

    def changed(self, tenant_id: str, version: int) -> bool:
        """Version ``version`` of the tenant was stored (here or on another replica); whether
        it is news."""
        if version <= self._newest.get(tenant_id, NO_SETTINGS):
            return False  # the feed's catch-up republishes versions already known
        _keep(self._newest, tenant_id, version, self._capacity)
        self._entries.pop(tenant_id, None)
        self._absent.pop(tenant_id, None)
        self._written.pop(tenant_id, None)
        for listener in self._listeners:
            listener(tenant_id)
        return True

    def __len__(self) -> int:
        """Tenants whose settings are kept (those known to have none are not counted)."""
        return len(self._entries)


def _keep(entries: OrderedDict[str, V], tenant_id: str, value: V, capacity: int) -> None:
    entries[tenant_id] = value
    entries.move_to_end(tenant_id)
    if len(entries) > capacity:
        entries.popitem(last=False)
