"""Which JKUs the JWTs sent to a tenant's base path URL named: one small document per tenant, kept
apart from the settings. An observation is not a setting: recording one bumps no version, writes
no history entry and tells no subscriber; only an integrator's adoption turns it into one.

Nothing observed is verified, so nothing observed may displace what an earlier request sent:
each URL keeps a few distinct variants (issuer, kid, alg and the token that carried them), and
adoption uses the one whose token the fetched key set verifies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ehr_gateway.storage.stored_numbers import INT_MAX, is_stored_number

OBSERVED_JKU = "observed_jku"
# Distinct JKU URLs kept per tenant: whatever a forger sends, a tenant's document holds at most
# this many, and at most MAX_OBSERVED_PER_SERVER of them on one server (host and port), so one
# forger's key server cannot take every slot. The first arrivals are kept and later URLs are
# only counted: nothing a sender controls (how often, how recently) ranks one URL above another,
# so a URL that arrived before the forger's can never be pushed out by them.
MAX_OBSERVED_PER_TENANT = 20
MAX_OBSERVED_PER_SERVER = 4
# Shown by integrationSettings.observedJku: the first seen of those kept.
MAX_OBSERVED_SHOWN = 5
# Distinct (issuer, kid, alg) per URL, each with the FIRST token that carried it, never
# replaced: a forged token naming a genuine URL (even copying its issuer, kid and alg) adds a
# variant, or is only counted, instead of overwriting the genuine one.
MAX_VARIANTS_PER_URL = 4
# A kept token's length at most (Epic's are about 1 KiB): the base path route refuses a longer
# one, so a full document stays small (20 URLs x 4 variants x 4 KiB).
MAX_OBSERVED_TOKEN = 4096
# Tries of the compare-and-set below before a merge gives up (another replica kept winning).
_MERGE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Variant:
    """Tokens naming one URL that agreed on issuer, kid and alg: the first of them, unverified
    (None where it was not read: what is shown needs no token)."""

    kid: str | None
    alg: str | None
    issuer: str | None
    token: str | None
    first_seen: datetime
    count: int

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return self.issuer, self.kid, self.alg

    def merged(self, other: Variant) -> Variant:
        """One variant of the two (of the same key): the earlier one's token, both counts."""
        earlier = self if self.first_seen <= other.first_seen else other
        return replace(earlier, count=_tally(self.count, other.count))


def _tally(first: int, second: int) -> int:
    """Two counts as one, saturating at the largest a count is stored (and shown) as: no count
    a gateway writes is a number GraphQL's Int cannot carry (storage.stored_numbers)."""
    return min(first + second, INT_MAX)


def _arrival(variant: Variant) -> datetime:
    return variant.first_seen


@dataclass(frozen=True, slots=True)
class Observation:
    """Requests whose token named the JKU ``url``, with the distinct variants they carried, the
    first seen first."""

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

    def merged(self, other: Observation) -> Observation:
        """This observation and ``other`` (of the same URL) as one: the first MAX_VARIANTS_PER_URL
        variants to arrive are kept, later ones only counted."""
        by_key: dict[tuple[str | None, str | None, str | None], Variant] = {}
        for variant in (*self.variants, *other.variants):
            earlier = by_key.get(variant.key)
            by_key[variant.key] = variant if earlier is None else earlier.merged(variant)
        ordered = sorted(by_key.values(), key=_arrival)[:MAX_VARIANTS_PER_URL]
        return Observation(
            url=self.url,
            variants=tuple(ordered),
            first_seen=min(self.first_seen, other.first_seen),
            last_seen=max(self.last_seen, other.last_seen),
            count=_tally(self.count, other.count),
        )


def _server(url: str) -> str:
    """The key server a URL names: its host and port."""
    return urlsplit(url).netloc.lower()


def kept(observations: list[Observation]) -> list[Observation]:
    """The observations a tenant keeps, the first seen first: the first to arrive, at most
    MAX_OBSERVED_PER_SERVER per server and MAX_OBSERVED_PER_TENANT in all. A URL that arrives
    when they are full is not kept: a forger can fill the free slots, never empty a taken one."""
    per_host: dict[str, int] = {}
    chosen: list[Observation] = []
    for seen in sorted(observations, key=lambda seen: seen.first_seen):
        host = _server(seen.url)
        if per_host.get(host, 0) >= MAX_OBSERVED_PER_SERVER:
            continue
        per_host[host] = per_host.get(host, 0) + 1
        chosen.append(seen)
        if len(chosen) == MAX_OBSERVED_PER_TENANT:
            break
    return chosen


def combine(stored: list[Observation], fresh: list[Observation]) -> list[Observation]:
    by_url = {seen.url: seen for seen in stored}
    for seen in fresh:
        earlier = by_url.get(seen.url)
        by_url[seen.url] = seen if earlier is None else earlier.merged(seen)
    return kept(list(by_url.values()))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _variant_row(variant: Variant) -> dict[str, Any]:
    # The token itself is kept apart (the document's ``tokens``), so that a read of what is
    # shown can leave every token out.
    digest = None if variant.token is None else _digest(variant.token)
    return {
        "kid": variant.kid, "alg": variant.alg, "issuer": variant.issuer,
        "tokenDigest": digest, "firstSeen": variant.first_seen, "count": variant.count,
    }  # fmt: skip


def _row(seen: Observation) -> dict[str, Any]:
    return {
        "url": seen.url, "variants": [_variant_row(variant) for variant in seen.variants],
        "firstSeen": seen.first_seen, "lastSeen": seen.last_seen, "count": seen.count,
    }  # fmt: skip


def _tokens(observations: list[Observation]) -> dict[str, str]:
    return {
        _digest(variant.token): variant.token
        for seen in observations
        for variant in seen.variants
        if variant.token is not None
    }


# A stored observation or variant whose fields a database writer gave types no gateway writes
# (text for a count, a count past GraphQL's Int, a date that is not one) is left out of what is
# read, as an observation recorded before tokens were kept is: shown, it would fail the settings
# read that asks for observedJku, and merged, every later observation of the tenant.


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _count(value: Any) -> TypeGuard[int]:
    return is_stored_number(value) and value >= 0


def _variant(row: Any, tokens: dict[str, Any]) -> Variant | None:
    if not isinstance(row, dict):
        return None
    # A row written before tokens were kept apart carries its token inline.
    digest = row.get("tokenDigest")
    token = tokens.get(digest) if isinstance(digest, str) and digest in tokens else row.get("token")
    kid, alg, issuer = row.get("kid"), row.get("alg"), row.get("issuer")
    first_seen, count = row.get("firstSeen"), row.get("count")
    if not (
        all(_optional_text(value) for value in (kid, alg, issuer, token))
        and isinstance(first_seen, datetime)
        and _count(count)
    ):
        return None
    return Variant(kid=kid, alg=alg, issuer=issuer, token=token, first_seen=first_seen, count=count)


def _observation(row: Any, tokens: dict[str, Any]) -> Observation | None:
    if not isinstance(row, dict):
        return None
    stored = row.get("variants")
    found = (_variant(v, tokens) for v in (stored if isinstance(stored, list) else []))
    variants = tuple(variant for variant in found if variant is not None)
    url, first_seen, last_seen, count = (
        row.get("url"), row.get("firstSeen"), row.get("lastSeen"), row.get("count"),
    )  # fmt: skip
    if not (
        variants  # none: recorded before tokens were kept, nothing adoption could verify
        and isinstance(url, str)
        and isinstance(first_seen, datetime)
        and isinstance(last_seen, datetime)
        and _count(count)
    ):
        return None
    return Observation(
        url=url, variants=tuple(sorted(variants, key=_arrival)),
        first_seen=first_seen, last_seen=last_seen, count=count,
    )  # fmt: skip


def _observations(document: dict[str, Any] | None) -> list[Observation]:
    if document is None:
        return []
    tokens = document.get("tokens")
    tokens = tokens if isinstance(tokens, dict) else {}
    rows = document.get("observations")
    found = (_observation(row, tokens) for row in (rows if isinstance(rows, list) else []))
    return [seen for seen in found if seen is not None]


class ObservedJkuStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._collection = database[OBSERVED_JKU]
        self.writes = 0  # merges stored by this process

    async def read(self, tenant_id: str, *, tokens: bool = True) -> list[Observation]:
        """The tenant's observations; without ``tokens``, their variants carry none (the
        database leaves them out: what is shown needs none, and a full document's tokens are
        most of its size)."""
        projection = None if tokens else {"tokens": 0}
        document = await self._collection.find_one({"_id": tenant_id}, projection)
        return kept(_observations(document))

    async def merge(self, tenant_id: str, fresh: list[Observation]) -> None:
        """Add ``fresh`` to the tenant's observations. A compare-and-set on the document's
        revision, so replicas merging at once do not lose each other's counts."""
        for _ in range(_MERGE_ATTEMPTS):
            document = await self._collection.find_one({"_id": tenant_id})
            # The revision as stored, whatever its type: the compare-and-set must match it.
            revision = None if document is None else document.get("revision")
            combined = combine(_observations(document), fresh)
            replacement = {
                "revision": revision + 1 if is_stored_number(revision) else 1,
                "observations": [_row(seen) for seen in combined],
                "tokens": _tokens(combined),
            }
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
