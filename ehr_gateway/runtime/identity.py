"""Who is calling: bearer JWTs verified against an OpenID issuer's keys, or against the local
development key.

Claims give the subject (``sub``), the tenants the caller may act on (a list of tenant ids, or
``"*"`` for staff) and its roles (a list, or a space-separated string). A verified token is kept
until it expires, so a caller that sends the same token again costs a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import KeySet

from ehr_gateway.ehr.jwks import (
    LEEWAY_S,
    JwksError,
    JwtRejected,
    discovery_url,
    jwks_url_from_discovery,
    read_header,
    read_signing_keys,
    verify_jwt,
)
from ehr_gateway.runtime.access import Principal, roles_named
from ehr_gateway.runtime.key_set_cache import KEY_TTL_S, REFETCH_INTERVAL_S
from ehr_gateway.runtime.outbound import OutboundPolicy, OutboundRefused, fetch_json

ALL_TENANTS = "*"
_MAX_TOKEN_LENGTH = 16_384
_CACHE_SIZE = 10_000
UNAVAILABLE = "the token issuer's keys are unavailable"
# How long past KEY_TTL_S the issuer's keys stay in use while they cannot be read again: an issuer
# briefly down costs no sign-ins, but a key it has since removed (rotated out, compromised) does
# not verify for ever.
STALE_KEYS_S = KEY_TTL_S


class Unauthenticated(Exception):
    """No usable credential. The message says what is wrong with it, nothing more."""


@dataclass(frozen=True, slots=True)
class ClaimNames:
    tenants: str = "tenants"
    roles: str = "roles"


KeyFetcher = Callable[[], Awaitable[KeySet]]


class IssuerKeys:
    """An OpenID issuer's signing keys: from its discovery document's jwks_uri, cached.

    Only the set's signing keys are kept (ehr.jwks.read_signing_keys): keys for other uses, or
    that the gateway would not accept (RSA under 2048 bits, say), are skipped, not fatal to the
    set. The keys are kept for KEY_TTL_S, then read again; a key set that cannot be read keeps
    the keys at hand in use for at most STALE_KEYS_S more (so a key the issuer has removed stops
    verifying within KEY_TTL_S + STALE_KEYS_S of the last good read), after which callers are
    refused until a read succeeds. A read that fails is not tried again for REFETCH_INTERVAL_S:
    while the issuer is down, requests are refused at once instead of each making an outbound
    call, and callers arriving during a read wait for it rather than make their own.

    Each read of the issuer is an outbound call under ``policy`` (runtime.outbound.exchange): a
    deadline for the whole call, not only for each read of it, and a cap on what it returns, so
    that an issuer, or anything on its path, that drips its answer cannot hold the fetch (and
    the requests waiting on it) for longer than that."""

    def __init__(self, issuer: str, client: httpx.AsyncClient, policy: OutboundPolicy) -> None:
        self._issuer = issuer
        self._client = client
        self._policy = policy
        self._keys: KeySet | None = None
        self._fetched_at = -1e9  # the last read that succeeded
        self._failed_at = -1e9  # the last read that failed
        self._failure = UNAVAILABLE
        self._lock = asyncio.Lock()
        self.generation = 0  # bumped by each read that succeeds

    def current(self, generation: int) -> bool:
        """Whether what was verified with the keys of read ``generation`` may stand: they are
        still the keys at hand, and fresh (past KEY_TTL_S, a token is verified again, and its
        verification reads the keys again)."""
        return generation == self.generation and time.monotonic() - self._fetched_at <= KEY_TTL_S

    async def get(self, kid: str | None) -> KeySet:
        """The key set, fetched again when stale or when it lacks ``kid`` (rate-limited)."""
        now = time.monotonic()
        tried_at = max(self._fetched_at, self._failed_at)
        stale = self._keys is None or now - self._fetched_at > KEY_TTL_S
        unknown = kid is not None and self._keys is not None and not _has_kid(self._keys, kid)
        if (stale and now - self._failed_at > REFETCH_INTERVAL_S) or (
            unknown and now - tried_at > REFETCH_INTERVAL_S
        ):
            usable = now - self._fetched_at <= KEY_TTL_S + STALE_KEYS_S
            if self._keys is not None and usable and not unknown and self._lock.locked():
                # Another request is fetching the keys again: the ones at hand still verify
                # this token, so it need not wait for that fetch.
                return self._keys
            async with self._lock:
                if max(self._fetched_at, self._failed_at) < now:  # nobody tried while we waited
                    await self._refresh()
        return self._usable()

    def _usable(self) -> KeySet:
        if self._keys is None or time.monotonic() - self._fetched_at > KEY_TTL_S + STALE_KEYS_S:
            raise Unauthenticated(self._failure)
        return self._keys

    async def _refresh(self) -> None:
        try:
            keys = await self._fetch()
        except Unauthenticated as failed:
            self._failure = str(failed)
        except (OutboundRefused, JwksError, ValueError):
            self._failure = UNAVAILABLE
        else:
            self._keys = keys
            self._fetched_at = time.monotonic()
            self.generation += 1
            return
        # Noted after the read, so the interval runs from when it gave up (a black-holed issuer
        # takes the outbound timeout).
        self._failed_at = time.monotonic()

    async def _fetch(self) -> KeySet:
        discovery = await fetch_json(
            self._client, self._policy, discovery_url(self._issuer), follow_redirects=False
        )
        # OpenID Connect Discovery 4.3: the document must name the issuer it was read from, so
        # that one issuer's document (on a shared host, say) cannot hand out another's keys.
        if not isinstance(discovery, dict) or discovery.get("issuer") != self._issuer:
            raise Unauthenticated("the token issuer's discovery document names another issuer")
        jwks_url = jwks_url_from_discovery(discovery)
        if jwks_url is None:
            raise Unauthenticated("the token issuer publishes no jwks_uri")
        keys = await fetch_json(self._client, self._policy, jwks_url, follow_redirects=False)
        return read_signing_keys(keys)


class StaticKeys:
    """A fixed key set: the development key."""

    generation = 0

    def __init__(self, keys: KeySet) -> None:
        self._keys = keys

    async def get(self, kid: str | None) -> KeySet:
        return self._keys

    def current(self, generation: int) -> bool:
        return True


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        keys: IssuerKeys | StaticKeys,
        claims: ClaimNames | None = None,
        unknown_key: str = "the token is signed by an unknown key",
        leeway_s: int = LEEWAY_S,
    ) -> None:
        self.issuer = issuer
        self.leeway_s = leeway_s
        self.audience = audience
        self._keys = keys
        self._claims = claims or ClaimNames()
        self._unknown_key = unknown_key
        # Each verified token's caller, with the generation of the keys it was verified with:
        # it stands while those keys are the ones at hand and fresh, so that a key the issuer
        # removes, or keys that can no longer be read, stop a token verified before.
        self._verified: dict[str, tuple[Principal, int]] = {}

    async def principal(self, authorization: str | None) -> Principal:
        """The caller an ``Authorization`` header value names; raises Unauthenticated."""
        if not authorization:
            raise Unauthenticated("a bearer token is required")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return await self.verify(token)

    async def verify(self, token: str) -> Principal:
        now = time.time()
        known = self._verified.get(token)
        if known is not None:
            principal, generation = known
            if principal.expires_at > now and self._keys.current(generation):
                return principal
            del self._verified[token]
        if len(token) > _MAX_TOKEN_LENGTH:
            raise Unauthenticated("the token is too long")
        try:
            header = read_header(token)
            keys = await self._keys.get(header.kid)
            generation = self._keys.generation  # of ``keys``: nothing ran in between
            if header.kid is not None and not _has_kid(keys, header.kid):
                raise Unauthenticated(self._unknown_key)
            claims = verify_jwt(token, header, keys, self.issuer, leeway_s=self.leeway_s)
        except JwtRejected as rejected:
            raise Unauthenticated(_REASONS.get(rejected.code, "the token is invalid")) from None
        principal = self._principal(claims)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, generation)
        return principal

    def _principal(self, claims: dict[str, Any]) -> Principal:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise Unauthenticated("the token is not meant for this gateway (audience)")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the token has no subject")
        tenants_claim = claims.get(self._claims.tenants)
        if tenants_claim == ALL_TENANTS:
            tenants: frozenset[str] | None = None
        elif isinstance(tenants_claim, list) and all(isinstance(t, str) for t in tenants_claim):
            tenants = frozenset(tenants_claim)
        else:
            tenants = frozenset()
        roles_claim = claims.get(self._claims.roles)
        if isinstance(roles_claim, str):
            roles_claim = roles_claim.split()
        roles = roles_named(roles_claim if isinstance(roles_claim, list) else [])
        return Principal(subject, roles, tenants, float(claims["exp"]))


_REASONS = {
    "EXPIRED": "the token has expired",
    "NOT_YET_VALID": "the token is not valid yet",
    "WRONG_ISSUER": "the token is not from the configured issuer",
    "BAD_SIGNATURE": "the token's signature does not verify",
    "DISALLOWED_ALG": "the token's algorithm is not accepted",
    "MALFORMED": "the token is malformed",
}


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys)
