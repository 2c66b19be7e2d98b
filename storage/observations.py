"""Which JKUs the JWTs sent to a tenant's base path URL named: one small document per tenant, kept
apart from the settings. An observation is not a setting: recording one bumps no version, writes
no history entry and tells no subscriber; only an integrator's adoption turns it into one."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

OBSERVED_JKU = "observed_jku"
# Distinct JKU URLs kept per tenant, the most recently seen: whatever a forger sends, a
# tenant's document holds at most this many.
MAX_OBSERVED_PER_TENANT = 5
# Tries of the compare-and-set below before a merge gives up (another replica kept winning).
_MERGE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Observation:
    """Requests whose token named the JKU ``url``: the header and issuer of the latest one."""

    url: str
    kid: str | None
    alg: str | None
    issuer: str | None
    first_seen: datetime
    last_seen: datetime
    count: int

    def merged(self, newer: Observation) -> Observation:
        """This observation followed by ``newer`` (of the same URL)."""
        return replace(
            newer,
            first_seen=min(self.first_seen, newer.first_seen),
            last_seen=max(self.last_seen, newer.last_seen),
            count=self.count + newer.count,
        )


def newest(observations: list[Observation]) -> list[Observation]:
    """The most recently seen MAX_OBSERVED_PER_TENANT, newest first."""
    ordered = sorted(observations, key=lambda seen: seen.last_seen, reverse=True)
    return ordered[:MAX_OBSERVED_PER_TENANT]


def combine(stored: list[Observation], fresh: list[Observation]) -> list[Observation]:
    by_url = {seen.url: seen for seen in stored}
    for seen in fresh:
        earlier = by_url.get(seen.url)
        by_url[seen.url] = seen if earlier is None else earlier.merged(seen)
    return newest(list(by_url.values()))


def _row(seen: Observation) -> dict[str, Any]:
    return {
        "url": seen.url, "kid": seen.kid, "alg": seen.alg, "issuer": seen.issuer,
        "firstSeen": seen.first_seen, "lastSeen": seen.last_seen, "count": seen.count,
    }  # fmt: skip


def _observation(row: dict[str, Any]) -> Observation:
    return Observation(
        url=row["url"], kid=row.get("kid"), alg=row.get("alg"), issuer=row.get("issuer"),
        first_seen=row["firstSeen"], last_seen=row["lastSeen"], count=int(row["count"]),
    )  # fmt: skip


class ObservedJkuStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = database[OBSERVED_JKU]
        self.writes = 0  # merges stored by this process

    async def read(self, tenant_id: str) -> list[Observation]:
        document = await self._collection.find_one({"_id": tenant_id})
        if document is None:
            return []
        return newest([_observation(row) for row in document.get("observations", [])])

    async def merge(self, tenant_id: str, fresh: list[Observation]) -> None:
        """Add ``fresh`` to the tenant's observations. A compare-and-set on the document's
        revision, so replicas merging at once do not lose each other's counts."""
        for _ in range(_MERGE_ATTEMPTS):
            document = await self._collection.find_one({"_id": tenant_id})
            revision = 0 if document is None else int(document.get("revision", 0))
            stored = [] if document is None else [_observation(r) for r in document["observations"]]
            rows = [_row(seen) for seen in combine(stored, fresh)]
            replacement = {"revision": revision + 1, "observations": rows}
            try:
                if document is None:
                    await self._collection.insert_one({"_id": tenant_id, **replacement})
                    self.writes += 1
                    return
                result = await self._collection.replace_one(
                    {"_id": tenant_id, "revision": revision}, replacement
                )
            except DuplicateKeyError:
                continue  # another replica inserted it first
            if result.matched_count:
                self.writes += 1
                return
