"""The eighth attack round's findings, each a failing test: a real gateway process's
subscriptions and the sign-in issuer's key reading (IssuerKeys and
TokenVerifier against a real issuer served on loopback)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.runtime.identity import IssuerKeys, TokenVerifier, Unauthenticated
from ehr_gateway.runtime.outbound import OutboundPolicy
from tests.processes import GatewayProcess, TransportWsClient
from tests.servers import serve_on_loopback

READ_TIMEOUT_S = 1


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    running = GatewayProcess(
        tmp_path_factory.mktemp("attack8"),
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"attack8_{uuid.uuid4().hex[:8]}",
        EHRGW_REQUEST_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    )
    yield running
    running.stop()


async def test_an_idle_subscription_connection_does_not_outlive_its_token(
    gateway: GatewayProcess,
) -> None:
    """Attack: connect over graphql-transport-ws with a token that is about to expire,
    acknowledge connection_init, and subscribe to nothing. The expiry watch
    (server/websocket.py _close_at_expiry) wakes at the token's exp, finds no operation running
    and ends without closing; nothing watches again, and uvicorn's pings keep the connection
    alive. A caller whose access was revoked keeps its authenticated connection (and the
    descriptor and buffers it holds) for as long as it likes; its operations are refused only
    once it sends one.

    Breaks README, Subscriptions: "A connection lasts as long as its token" (the same
    paragraph's detail says the expiry closes it only "while operations are running": the two
    disagree). Fix in server/websocket.py: at expiry close the connection with 4403 whether or
    not operations run (both protocols), or have README say idle connections outlive tokens."""
    token = dev_tokens.mint(
        gateway.data_dir, tenants=["acme"], roles=["viewer"], subject="leaving", ttl_s=2
    )
    client = await TransportWsClient.connect(gateway.ws_url, token=token)
    try:
        try:
            code = await client.close_code(within=15)
        except TimeoutError:
            code = None  # still open, well past the token's expiry
    finally:
        await client.close()
    assert code == 4403


# The sign-in issuer's keys.

POLICY = OutboundPolicy(allow_insecure_http=True, allow_private=True, timeout_s=5)
AUDIENCE = "ehr-gateway"


@dataclass
class Issuer:
    """An OpenID issuer on loopback: its key set holds ``signing`` (RS256) and whatever
    ``others`` it also publishes; ``down`` makes its discovery document a 503. It counts the
    discovery reads it has been asked for."""

    signing: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "sig"}))
    others: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    url: str = ""
    discovery_reads: int = 0

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            self.discovery_reads += 1
            if self.down:
                return JSONResponse({"error": "unavailable"}, status_code=503)
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/certs"})

        async def certs(request: Request) -> Response:
            public = {**self.signing.as_dict(private=False), "alg": "RS256", "use": "sig"}
            return JSONResponse({"keys": [public, *self.others]})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/certs", certs),
            ]
        )

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "someone",
            "exp": now + 300,
            "tenants": ["acme"],
            "roles": ["viewer"],
        }
        return jwt.encode({"alg": "RS256", "kid": "sig"}, claims, self.signing)


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    running = Issuer()
    async with serve_on_loopback(running.app()) as url:
        running.url = url
        yield running


async def test_a_token_verifies_when_the_issuer_also_publishes_an_encryption_key(
    issuer: Issuer,
) -> None:
    """Attack (or plain deployment): the issuer's key set holds, besides its RS256 signing key,
    an RSA key for encryption (``use: enc``, ``alg: RSA-OAEP``), as Keycloak publishes on every
    realm's certs endpoint by default (its rsa-enc-generated key). read_jwks refuses the whole
    set for one key whose alg is not a signing algorithm (UNSUPPORTED_ALG; likewise an OKP
    Ed25519 key is UNSUPPORTED_KEY), so IssuerKeys has no keys and every caller is refused
    "the token issuer's keys are unavailable". Had keys been read before, they are kept with
    no end while the set stays unreadable: a key the issuer removed in the same rotation (say,
    a compromised one) keeps verifying tokens for as long as the gateway runs.

    Breaks README, Who may do what, A real issuer: "Set EHRGW_AUTH_ISSUER to the issuer URL
    (Keycloak realm, Auth0 tenant, Entra ID…); the gateway reads jwks_uri ... keeps the keys for
    5 minutes". Fix in runtime/identity.py IssuerKeys._fetch (not ehr.jwks.read_jwks, whose
    strictness is right for a JKU an integrator records): keep the set's signing keys (use
    absent or sig, kty RSA/EC, alg absent or allowed) and skip the others; refuse a set only
    when no usable key is left, or when one carries private material."""
    issuer.others = [
        {
            **RSAKey.generate_key(2048, {"kid": "enc"}).as_dict(private=False),
            "alg": "RSA-OAEP",
            "use": "enc",
        }
    ]
    async with httpx.AsyncClient() as client:
        verifier = TokenVerifier(issuer.url, AUDIENCE, IssuerKeys(issuer.url, client, POLICY))
        principal = await verifier.verify(issuer.token())
    assert principal.subject == "someone"


async def test_while_the_issuer_is_down_tokens_do_not_each_read_it_again(issuer: Issuer) -> None:
    """Attack: while the issuer's keys cannot be read (it answers 503, is unreachable or drips
    past the outbound timeout), send JWT-shaped tokens: any header with an accepted alg will
    do, no valid signature needed, no token of the deployment's. IssuerKeys notes when it
    fetched only on success, so every request fetches the discovery document again: an
    unauthenticated client turns each of its requests into an outbound call to the issuer, and
    since the fetches are serialised by one lock, concurrent requests queue behind one another,
    each waiting for every earlier fetch (with a black-holed issuer, the n-th request waits n
    outbound timeouts).

    Breaks README, Who may do what, A real issuer: "fetches them again on an unknown kid (at
    most every 30 s)", and the reason given for that bound in runtime/key_set_cache ("a stream
    of tokens with made-up kids must not become a stream of requests to the key server"). Fix
    in runtime/identity.py IssuerKeys.get/_fetch: note a failed fetch's time too, and refuse
    at once until REFETCH_INTERVAL_S has passed."""
    issuer.down = True
    async with httpx.AsyncClient() as client:
        verifier = TokenVerifier(issuer.url, AUDIENCE, IssuerKeys(issuer.url, client, POLICY))
        for _ in range(10):
            with pytest.raises(Unauthenticated):
                await verifier.verify(issuer.token())
    assert issuer.discovery_reads == 1


# A 512-bit RSA key (made for this test with `openssl genrsa 512`): the size RSA-155 was
# factored at in 1999, and that rented machines factor today in hours.
WEAK_KEY = {
    "kty": "RSA",
    "kid": "weak",
    "n": "pfgasGhtZe_FPh7178QAS03kLCehvC9GuCivEjqr7lmVA7y5FWxZevdLKgil5GZtBLrYIKKwBva9U2kj98nutw",
    "e": "AQAB",
    "d": "a5qR4zGxS9fKb94u4YaYEjqr5pzDVXjpRtjJuO3lLqBGDIIH7trrupVgrtBZerZrN5X0cf68UoI50FSVxupZAQ",
    "p": "3Afli-U5tmsh7wyXQI491-_obH5uSBhmHp9pB1s-tcE",
    "q": "wRnFoRQtORka7aPzH4yZvkq8-LCiJHgWSZdkPuiT8nc",
    "dp": "1jBltzI0ZSyTAva5wmD1OODU29CToGEH_-VkQ4ICYME",
    "dq": "hlrHLidau9Ki8NvVCouKYWOhDivf9R306-lBH6A1aEs",
    "qi": "RsQ-pwYXDHl7druOjIvXtFh3mwVnHGbSiKWS2VMrqKA",
}


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
async def test_a_token_signed_with_a_512_bit_rsa_key_of_the_issuer_is_refused(
    issuer: Issuer,
) -> None:
    """Attack: the issuer's key set also holds a 512-bit RSA key (a legacy or test key left
    published, or one planted in the set); whoever factors its modulus (hours of rented
    computing) signs tokens of any subject, tenants "*" and every role, and the gateway takes
    them: read_jwks and joserfc accept RSA keys of any size (joserfc only warns). The same
    read_jwks decides which keys of an Epic JKU key set verifyEpicJwt trusts.

    Breaks README, Security, Authentication: "Bearer JWTs with an asymmetric signature from the
    configured issuer" (RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used with
    these algorithms"). Fix in ehr/jwks.py read_jwks: refuse (or, for the sign-in issuer,
    skip) RSA keys under 2048 bits, and EC keys whose curve does not match their alg."""
    weak = RSAKey.import_key(WEAK_KEY)
    issuer.others = [{**weak.as_dict(private=False), "alg": "RS256", "use": "sig"}]
    now = int(time.time())
    claims = {
        "iss": issuer.url,
        "aud": AUDIENCE,
        "sub": "forger",
        "exp": now + 300,
        "tenants": "*",
        "roles": ["integrator"],
    }
    forged = jwt.encode({"alg": "RS256", "kid": "weak"}, claims, weak)
    async with httpx.AsyncClient() as client:
        verifier = TokenVerifier(issuer.url, AUDIENCE, IssuerKeys(issuer.url, client, POLICY))
        assert (await verifier.verify(issuer.token())).subject == "someone"
        with pytest.raises(Unauthenticated):
            await verifier.verify(forged)
