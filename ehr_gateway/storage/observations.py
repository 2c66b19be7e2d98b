"""Which JKUs the JWTs sent to a tenant's base path URL named: one small document per tenant, kept
apart from the settings. An observation is not a setting: recording one bumps no version, writes
no history entry and tells no subscriber; only an integrator's adoption turns it into one.

Nothing observed is verified, so nothing observed may displace what an earlier request sent:
each URL keeps a few distinct variants (issuer, kid, alg and the token that carried them), and
adoption uses the one whose token the fetched key set verifies."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

OBSERVED_JKU = "observed_jku"
# Distinct JKU URLs kept per tenant: whatever a forger sends, a tenant's document holds at most
# this many, and at most MAX_OBSERVED_PER_SERVER of them on one server (host and port), so one
# forger's key server cannot take every slot. When full, the least-seen URL goes (Epic calls
# again and again; a forger must outnumber it, within the tenant's rate limit, to evict it).
MAX_OBSERVED_PER_TENANT = 20
MAX_OBSERVED_PER_SERVER = 4
# Distinct (issuer, kid, alg) per URL, each with the latest token that carried it: a forged
# token naming a genuine URL adds a variant instead of overwriting the genuine one.
MAX_VARIANTS_PER_URL = 4
# Tries of the compare-and-set below before a merge gives up (another replica kept winning).
_MERGE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Variant:
    """Tokens naming one URL that agreed on issuer, kid and alg: the latest of them, unverified."""

    kid: str | None
    alg: str | None
    issuer: str | None
    token: str
    first_seen: datetime
    count: int

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return self.issuer, self.kid, self.alg

    def merged(self, newer: Variant) -> Variant:
        return replace(
            newer, first_seen=min(self.first_seen, newer.first_seen), count=self.count + newer.count
        )


def _preferred(variant: Variant) -> tuple[int, datetime]:
    # Most seen first, then the earliest: a forger's single request after Epic's does not win.
    return -variant.count, variant.first_seen


@dataclass(frozen=True, slots=True)
class Observation:
    """Requests whose token named the JKU ``url``, with the distinct variants they carried, the
    most seen first."""

    url: str
    variants: tuple[Variant, ...]
    first_seen: datetime
    last_seen: datetime
    count: int

    @property
    def shown(self) -> Variant:
        return self.variants[0]

    @property
    def kid(self) -> str | None:
        return self.shown.kid

    @property
    def alg(self) -> str | None:
        return self.shown.alg

    @property
    def issuer(self) -> str | None:
        return self.shown.issuer

    def merged(self, newer: Observation) -> Observation:
        """This observation followed by ``newer`` (of the same URL)."""
        by_key = {variant.key: variant for variant in self.variants}
        for variant in newer.variants:
            earlier = by_key.get(variant.key)
            by_key[variant.key] = variant if earlier is None else earlier.merged(variant)
        ordered = sorted(by_key.values(), key=_preferred)
        if len(ordered) > MAX_VARIANTS_PER_URL:
            # The first variant ever seen stays (it came before any forger knew of the URL, or
            # the forger was first, and then adoption fails verification, not silently).
            oldest = min(ordered, key=lambda variant: variant.first_seen)
            others = [variant for variant in ordered if variant is not oldest]
            ordered = sorted([oldest, *others[: MAX_VARIANTS_PER_URL - 1]], key=_preferred)
        return Observation(
            url=self.url,
            variants=tuple(ordered),
            first_seen=min(self.first_seen, newer.first_seen),
            last_seen=max(self.last_seen, newer.last_seen),
            count=self.count + newer.count,
        )


def _server(url: str) -> str:
    """The key server a URL names: its host and port."""
    return urlsplit(url).netloc.lower()


def kept(observations: list[Observation]) -> list[Observation]:
    """The observations a tenant keeps, newest first: the first ever seen, then at most
    MAX_OBSERVED_PER_SERVER per server and MAX_OBSERVED_PER_TENANT in all, the most seen (then
    the most recently seen) winning."""
    if not observations:
        return []
    # The first URL ever observed stays whatever comes after it: a forger who learns the base
    # path URL after Epic has called cannot push Epic's observation out, however many hosts
    # (never fetched, so free) it names.
    first = min(observations, key=lambda seen: seen.first_seen)
    ranked = sorted(observations, key=lambda seen: (seen.count, seen.last_seen), reverse=True)
    ranked.remove(first)
    per_host: dict[str, int] = {}
    chosen: list[Observation] = []
    for seen in [first, *ranked]:
        host = _server(seen.url)
        if per_host.get(host, 0) >= MAX_OBSERVED_PER_SERVER:
            continue
        per_host[host] = per_host.get(host, 0) + 1
        chosen.append(seen)
        if len(chosen) == MAX_OBSERVED_PER_TENANT:
            break
    return sorted(chosen, key=lambda seen: seen.last_seen, reverse=True)


def combine(stored: list[Observation], fresh: list[Observation]) -> list[Observation]:
    by_url = {seen.url: seen for seen in stored}
    for seen in fresh:
        earlier = by_url.get(seen.url)
        by_url[seen.url] = seen if earlier is None else earlier.merged(seen)
    return kept(list(by_url.values()))


def _variant_row(variant: Variant) -> dict[str, Any]:
    return {
        "kid": variant.kid, "alg": variant.alg, "issuer": variant.issuer,
        "token": variant.token, "firstSeen": variant.first_seen, "count": variant.count,
    }  # fmt: skip


def _row(seen: Observation) -> dict[str, Any]:
    return {
        "url": seen.url, "variants": [_variant_row(variant) for variant in seen.variants],
        "firstSeen": seen.first_seen, "lastSeen": seen.last_seen, "count": seen.count,
    }  # fmt: skip


def _variant(row: dict[str, Any]) -> Variant:
    return Variant(
        kid=row.get("kid"), alg=row.get("alg"), issuer=row.get("issuer"), token=row["token"],
        first_seen=row["firstSeen"], count=int(row["count"]),
    )  # fmt: skip


def _observation(row: dict[str, Any]) -> Observation | None:
    variants = tuple(_variant(v) for v in row.get("variants", []))
    if not variants:
        return None  # recorded before tokens were kept: nothing adoption could verify
    return Observation(
        url=row["url"], variants=tuple(sorted(variants, key=_preferred)),
        first_seen=row["firstSeen"], last_seen=row["lastSeen"], count=int(row["count"]),
    )  # fmt: skip


def _observations(document: dict[str, Any] | None) -> list[Observation]:
    if document is None:
        return []
    found = (_observation(row) for row in document.get("observations", []))
    return [seen for seen in found if seen is not None]


class ObservedJkuStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = database[OBSERVED_JKU]
        self.writes = 0  # merges stored by this process

    async def read(self, tenant_id: str) -> list[Observation]:
        document = await self._collection.find_one({"_id": tenant_id})
        return kept(_observations(document))

    async def merge(self, tenant_id: str, fresh: list[Observation]) -> None:
        """Add ``fresh`` to the tenant's observations. A compare-and-set on the document's
        revision, so replicas merging at once do not lose each other's counts."""
        for _ in range(_MERGE_ATTEMPTS):
            document = await self._collection.find_one({"_id": tenant_id})
            revision = 0 if document is None else int(document.get("revision", 0))
            rows = [_row(seen) for seen in combine(_observations(document), fresh)]
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
