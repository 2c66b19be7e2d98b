"""Key sets by URL, cached so that verifying a JWT rarely costs a fetch."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from joserfc.jwk import KeySet

KEY_TTL_S = 300.0
# A token naming an unknown kid fetches the keys again at most this often (per tenant for the
# JKU, per issuer for the gateway's own callers): a stream of tokens with made-up kids must not
# become a stream of requests to the key server.
REFETCH_INTERVAL_S = 30.0


@dataclass
class KeySetCache:
    """Key sets by URL, kept for a while so verifying a JWT rarely costs a fetch, and when each
    tenant last fetched its keys again for an unknown kid."""

    ttl_s: float = KEY_TTL_S
    refetch_interval_s: float = REFETCH_INTERVAL_S
    _entries: dict[str, tuple[float, KeySet]] = field(default_factory=dict)
    _refetched_at: dict[str, float] = field(default_factory=dict)
    _fetching: dict[str, asyncio.Lock] = field(default_factory=dict)

    def get(self, url: str) -> KeySet | None:
        entry = self._entries.get(url)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, url: str, keys: KeySet) -> None:
        self._entries[url] = (time.monotonic(), keys)

    def fetching(self, url: str) -> asyncio.Lock:
        """Held while ``url`` is fetched because it is not cached, so that callers arriving
        together wait for one fetch instead of making one each."""
        return self._fetching.setdefault(url, asyncio.Lock())

    def may_refetch(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` may fetch its keys again for an unknown kid now; if so, the
        refetch is counted from now (before it is made, so that concurrent callers do not all
        go)."""
        now = time.monotonic()
        last = self._refetched_at.get(tenant_id)
        if last is not None and now - last < self.refetch_interval_s:
            return False
        self._refetched_at[tenant_id] = now
        return True
