"""The sign-in issuer's keys (runtime.identity.IssuerKeys, and TokenVerifier with them) read
from a real issuer on loopback: kept for KEY_TTL_S and read again after it; while a request
reads them again, other requests go on with the keys at hand rather than wait for that read; a
key set larger than the outbound cap is refused, and the keys at hand stay in use, for a bounded
time; only the set's signing keys are kept; while the issuer is down its keys are not read again
for every token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey, RSAKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_gateway.runtime.identity import (
    STALE_KEYS_S,
    IssuerKeys,
    TokenVerifier,
    Unauthenticated,
)
from ehr_gateway.runtime.key_set_cache import KEY_TTL_S, REFETCH_INTERVAL_S
from ehr_gateway.runtime.outbound import OutboundPolicy
from tests.issuers import SignInIssuer, new_key, serve_issuer
from tests.weak_keys import WEAK_RSA_KEY

POLICY = OutboundPolicy(allow_insecure_http=True, allow_private=True, timeout_s=5)
UNAVAILABLE = "the token issuer's keys are unavailable"


@dataclass
class Issuer(SignInIssuer):
    """An OpenID issuer whose key set holds its signing key and whatever ``others`` it also
    publishes. Its key set answer can be held back (``hold``) or padded past the outbound cap
    (``oversized``); ``down`` makes its discovery document a 503. It counts the discovery and
    key set reads it has begun."""

    others: list[dict[str, Any]] = field(default_factory=list)
    discovery_reads: int = 0
    key_set_reads: int = 0
    hold: asyncio.Event | None = None
    oversized: bool = False
    down: bool = False

    async def discovery(self, request: Request) -> Response:
        self.discovery_reads += 1
        if self.down:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return await super().discovery(request)

    async def key_set(self, request: Request) -> Response:
        self.key_set_reads += 1
        if self.hold is not None:
            await self.hold.wait()
        keys = [*self.public_key_set()["keys"], *self.others]
        padding = "x" * (POLICY.max_response_bytes + 1) if self.oversized else ""
        return JSONResponse({"keys": keys, "padding": padding})

    def token(self, key: RSAKey | None = None, **claims: Any) -> str:
        """A viewer's token on tenant acme, signed with ``key`` (the issuer's own by default);
        ``claims`` replace any of its claims."""
        fields: dict[str, Any] = {
            "sub": "someone", "tenants": ["acme"], "roles": ["viewer"], **claims
        }  # fmt: skip
        sub, tenants, roles = fields.pop("sub"), fields.pop("tenants"), fields.pop("roles")
        return self.issue(sub, tenants, roles, key=key, **fields)


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with serve_issuer(Issuer(new_key("k1"))) as running:
        yield running


def kids(keys: object) -> list[str | None]:
    return [key.kid for key in keys]  # type: ignore[attr-defined]


def made_stale(keys: IssuerKeys, by: float = KEY_TTL_S + 1) -> None:
    """As if ``by`` seconds (KEY_TTL_S and one by default) had passed since the keys were read,
    and since any read of them failed."""
    keys._fetched_at -= by  # the clock is not waited for
    keys._failed_at -= by


def verifier(keys: IssuerKeys, issuer: Issuer) -> TokenVerifier:
    return TokenVerifier(issuer.url, issuer.audience, keys)


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


async def test_a_token_verifies_when_the_issuer_also_publishes_keys_for_other_uses(
    issuer: Issuer,
) -> None:
    """Keycloak publishes an RSA-OAEP encryption key (use enc) on every realm's certs endpoint
    by default; an issuer may also publish an Ed25519 key. Neither refuses the set: they are
    left out, and the signing key verifies."""
    encryption = RSAKey.generate_key(2048, {"kid": "enc"})
    issuer.others = [
        {**encryption.as_dict(private=False), "alg": "RSA-OAEP", "use": "enc"},
        {**OKPKey.generate_key("Ed25519").as_dict(private=False), "kid": "ed"},
    ]
    async with httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        principal = await verifier(keys, issuer).verify(issuer.token())
        assert principal.subject == "someone"
        assert kids(await keys.get("k1")) == ["k1"]


async def test_a_key_rotated_out_beside_an_encryption_key_stops_verifying(issuer: Issuer) -> None:
    """The issuer adds an encryption key in the same rotation that replaces its signing key
    (the old one compromised, say): the new set is read, so the old key stops verifying."""
    async with httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        old = issuer.key
        old_token = issuer.token()
        assert (await verifier(keys, issuer).verify(old_token)).subject == "someone"

        issuer.key = new_key("k2")
        encryption = RSAKey.generate_key(2048, {"kid": "enc"})
        issuer.others = [{**encryption.as_dict(private=False), "alg": "RSA-OAEP", "use": "enc"}]
        made_stale(keys)

        assert kids(await keys.get(None)) == ["k2"]
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier(keys, issuer).verify(issuer.token(old, sub="with-the-old-key"))
        assert (await verifier(keys, issuer).verify(issuer.token())).subject == "someone"


async def test_keys_that_cannot_be_read_again_are_used_for_a_bounded_time(issuer: Issuer) -> None:
    """While the issuer is down the keys at hand verify for STALE_KEYS_S past KEY_TTL_S (an
    outage costs no sign-ins), then no longer: a key the issuer has removed meanwhile does not
    verify for as long as the gateway runs."""
    async with httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        assert kids(await keys.get("k1")) == ["k1"]

        issuer.down = True
        made_stale(keys)
        assert kids(await keys.get("k1")) == ["k1"]  # stale, unreadable, still in use
        assert issuer.discovery_reads == 2

        made_stale(keys, STALE_KEYS_S)
        with pytest.raises(Unauthenticated, match=UNAVAILABLE):
            await keys.get("k1")
        assert issuer.discovery_reads == 3

        issuer.down = False  # back: read again once the interval has passed
        made_stale(keys, REFETCH_INTERVAL_S + 1)
        assert kids(await keys.get("k1")) == ["k1"]
    assert issuer.discovery_reads == 4


async def test_while_the_issuer_is_down_tokens_do_not_each_read_it_again(issuer: Issuer) -> None:
    """The attack: JWT-shaped tokens with an accepted alg (no valid signature needed) while the
    issuer's keys cannot be read. Each would have been an outbound call to the issuer, and
    concurrent ones queued behind one another's (the n-th waiting n outbound timeouts): a failed
    read is noted, callers arriving meanwhile share it, and each later one is refused at once
    until REFETCH_INTERVAL_S has passed."""
    issuer.down = True
    async with httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        refusals = await asyncio.gather(
            *(verifier(keys, issuer).verify(issuer.token()) for _ in range(5)),
            return_exceptions=True,
        )
        assert [str(refusal) for refusal in refusals] == [UNAVAILABLE] * 5
        for _ in range(10):
            with pytest.raises(Unauthenticated, match=UNAVAILABLE):
                await verifier(keys, issuer).verify(issuer.token())
        assert issuer.discovery_reads == 1

        issuer.down = False
        made_stale(keys, REFETCH_INTERVAL_S + 1)
        assert (await verifier(keys, issuer).verify(issuer.token())).subject == "someone"
    assert issuer.discovery_reads == 2


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")  # signing with it
async def test_a_token_signed_with_a_512_bit_rsa_key_of_the_issuer_is_refused(
    issuer: Issuer,
) -> None:
    """The attack: the issuer's key set also holds a 512-bit RSA key (a legacy or test key left
    published, or one planted in the set). Whoever factors its modulus (hours of rented
    computing) signs tokens of any subject, tenants "*" and every role; the key is left out of
    the set (RFC 7518 3.3: 2048 bits or more), and the issuer's own key still verifies."""
    weak = RSAKey.import_key(WEAK_RSA_KEY)
    issuer.others = [{**weak.as_dict(private=False), "alg": "RS256", "use": "sig"}]
    forged = issuer.token(weak, sub="forger", tenants="*", roles=["integrator"])
    async with httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        assert (await verifier(keys, issuer).verify(issuer.token())).subject == "someone"
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier(keys, issuer).verify(forged)


async def test_a_discovery_document_naming_another_issuer_gives_no_keys(issuer: Issuer) -> None:
    """OpenID Connect Discovery 4.3: the document read from an issuer's URL must name that issuer
    (a tenant's document on a shared identity host must not serve for another's)."""

    class Impostor(Issuer):
        async def discovery(self, request: Request) -> Response:
            url = f"{self.url}/realms/other"
            return JSONResponse({"issuer": url, "jwks_uri": f"{self.url}/jwks.json"})

    async with serve_issuer(Impostor(new_key("k1"))) as impostor, httpx.AsyncClient() as client:
        keys = IssuerKeys(impostor.url, client, POLICY)
        with pytest.raises(Unauthenticated, match="names another issuer"):
            await keys.get("k1")
        assert impostor.key_set_reads == 0


async def test_a_token_verified_before_its_key_was_rotated_out_stops_verifying() -> None:
    """A token signed with a key the issuer later removes (compromised, rotated out), presented
    once while the key was published, with an ``exp`` of the signer's choosing: the verifier's
    cache of verified tokens holds it only while the keys it was verified with are the ones at
    hand, so once the new set is read it is verified again, and refused."""
    async with serve_issuer(Issuer(new_key("k1"))) as issuer, httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        verifier = TokenVerifier(issuer.url, issuer.audience, keys)
        compromised: RSAKey = issuer.key
        long_lived = issuer.issue("intruder", "*", ["admin"], exp_in=365 * 24 * 3600)
        assert (await verifier.verify(long_lived)).subject == "intruder"

        issuer.key = new_key("k2")  # k1 rotated out
        made_stale(keys)
        assert kids(await keys.get(None)) == ["k2"]
        with pytest.raises(Unauthenticated, match="unknown key"):  # a new token with k1: refused
            await verifier.verify(issuer.token(compromised, sub="fresh"))

        with pytest.raises(Unauthenticated):
            await verifier.verify(long_lived)


async def test_a_token_verified_before_the_keys_became_unusable_stops_verifying() -> None:
    """The issuer is down past STALE_KEYS_S: callers are refused until a read succeeds, those
    whose tokens were verified before the outage too (a key removed meanwhile must not verify
    for ever)."""
    async with serve_issuer(Issuer(new_key("k1"))) as issuer, httpx.AsyncClient() as client:
        keys = IssuerKeys(issuer.url, client, POLICY)
        verifier = TokenVerifier(issuer.url, issuer.audience, keys)
        long_lived = issuer.issue("someone", ["acme"], ["viewer"], exp_in=365 * 24 * 3600)
        assert (await verifier.verify(long_lived)).subject == "someone"

        issuer.down = True
        made_stale(keys)
        await keys.get("k1")  # stale, unreadable, still in use
        made_stale(keys, STALE_KEYS_S)
        with pytest.raises(Unauthenticated, match=UNAVAILABLE):
            await verifier.verify(issuer.token(sub="another"))  # a token not seen before

        with pytest.raises(Unauthenticated, match=UNAVAILABLE):
            await verifier.verify(long_lived)
