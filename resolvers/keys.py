"""Key sets by URL, cached so that verifying a JWT rarely costs a fetch."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from joserfc.jwk import KeySet

KEY_TTL_S = 300.0


@dataclass
class KeySetCache:
    """Key sets by URL, kept for a while so verifying a JWT rarely costs a fetch."""

    ttl_s: float = KEY_TTL_S
    _entries: dict[str, tuple[float, KeySet]] = field(default_factory=dict)

    def get(self, url: str) -> KeySet | None:
        entry = self._entries.get(url)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, url: str, keys: KeySet) -> None:
        self._entries[url] = (time.monotonic(), keys)
