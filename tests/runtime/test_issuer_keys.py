"""The sign-in issuer's keys (runtime.identity.IssuerKeys) read from a real issuer on loopback:
kept for KEY_TTL_S and read again after it; while a request reads them again, other requests go
on with the keys at hand rather than wait for that read; a key set larger than the outbound cap
is refused, and the keys at hand stay in use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_gateway.runtime.identity import IssuerKeys
from ehr_gateway.runtime.key_set_cache import KEY_TTL_S
from ehr_gateway.runtime.outbound import OutboundPolicy
from tests.issuers import SignInIssuer, new_key, serve_issuer

POLICY = OutboundPolicy(allow_insecure_http=True, allow_private=True, timeout_s=5)


@dataclass
class Issuer(SignInIssuer):
    """An OpenID issuer whose key set answer can be held back (``hold``) or padded past the
    outbound cap (``oversized``); it counts the key set reads it has begun."""

    key_set_reads: int = 0
    hold: asyncio.Event | None = None
    oversized: bool = False

    async def key_set(self, request: Request) -> Response:
        self.key_set_reads += 1
        if self.hold is not None:
            await self.hold.wait()
        padding = "x" * (POLICY.max_response_bytes + 1) if self.oversized else ""
        return JSONResponse({**self.public_key_set(), "padding": padding})


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with serve_issuer(Issuer(new_key("k1"))) as running:
        yield running


def kids(keys: object) -> list[str | None]:
    return [key.kid for key in keys]  # type: ignore[attr-defined]


def made_stale(keys: IssuerKeys) -> None:
    """As if KEY_TTL_S had passed since the keys were read."""
    keys._fetched_at -= KEY_TTL_S + 1  # the clock is not waited for


@pytest.fixture
async def keys(issuer: Issuer) -> AsyncIterator[IssuerKeys]:
    """The issuer's keys as the gateway holds them, read once."""
    async with httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        assert kids(await keys.get("k1")) == ["k1"]
        yield keys


async def test_while_the_keys_are_read_again_other_requests_go_on_with_those_at_hand(
    issuer: Issuer, keys: IssuerKeys
) -> None:
    assert issuer.key_set_reads == 1

    made_stale(keys)
    issuer.hold = asyncio.Event()
    reading = asyncio.create_task(keys.get("k1"))
    try:
        while issuer.key_set_reads < 2:  # noqa: ASYNC110 - the issuer counts, it does not signal
            await asyncio.sleep(0.01)

        other = await asyncio.wait_for(keys.get("k1"), 2)  # not behind the read under way
        assert kids(other) == ["k1"]
        assert not reading.done()
    finally:
        issuer.hold.set()
    assert kids(await reading) == ["k1"]
    assert issuer.key_set_reads == 2


async def test_a_key_set_past_the_outbound_cap_is_not_taken_and_the_keys_at_hand_stay(
    issuer: Issuer, keys: IssuerKeys
) -> None:
    made_stale(keys)
    issuer.key = new_key("k2")  # a new key set, but oversized
    issuer.oversized = True
    assert kids(await keys.get(None)) == ["k1"]  # the read was refused; the keys stay
    assert issuer.key_set_reads == 2
