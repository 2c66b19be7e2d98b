"""The eighth attack round's findings, each a failing test: the HTTP protocol's hardening (a real
gateway process over raw sockets) and the sign-in issuer's key reading (IssuerKeys and
TokenVerifier against a real issuer served on loopback)."""

from __future__ import annotations

import contextlib
import re
import socket
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

from ehr_gateway.runtime.identity import IssuerKeys, TokenVerifier, Unauthenticated
from ehr_gateway.runtime.outbound import OutboundPolicy
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback

READ_TIMEOUT_S = 1
# uvicorn's own keep-alive idleness, which the gateway does not change.
KEEP_ALIVE_S = 5
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
QUERY = b'{"query":"{__typename}"}'


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


def read_until_closed(connection: socket.socket, quiet: float) -> tuple[bytes, bool]:
    """Everything the gateway sends until it closes (True) or is quiet for ``quiet`` s (False)."""
    connection.settimeout(quiet)
    received = bytearray()
    try:
        while chunk := connection.recv(1 << 16):
            received += chunk
    except TimeoutError:
        return bytes(received), False
    except ConnectionResetError:
        pass
    return bytes(received), True


def statuses(received: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", received)


def test_trailers_of_a_chunked_body_are_held_to_the_head_limit(gateway: GatewayProcess) -> None:
    """Attack: a chunked POST, no token needed, whose trailer section (header fields after the
    last chunk) takes a megabyte. The 64 KB head limit counts only the head, the body limit only
    chunk data, and httptools hands every trailer field to uvicorn's on_header, which appends it
    to the request's header list: nothing bounds it but the read deadline. Measured on a served
    gateway (EHRGW_REQUEST_READ_TIMEOUT_S=10): one unauthenticated request with 400 MB of
    trailers, sent in 0.7 s over loopback, took the process from 107 MB to 586 MB RSS, answered
    401 and kept the connection. (The trailers also land in ``scope["headers"]`` after the gate
    read them: the idempotency keys and Strawberry's Accept are read from that list later.)

    Breaks README, Security, Slow clients: "A request's head may take 64 KB (431 past it;
    uvicorn's httptools protocol reads one of any size)". Fix in server/http_protocol.py: count
    bytes after the last chunk against MAX_HEAD_BYTES (or refuse trailers: on_header after
    on_headers_complete), and answer 431 and close."""
    trailer_line = b"X-Trailer: " + b"a" * 1000 + b"\r\n"
    request = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n"
        % (len(QUERY), QUERY)
        + trailer_line * 1000  # about 1 MB of trailer fields
        + b"\r\n"
        + HEALTHZ
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        # Refused before all of it was taken: what the fix may do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        received, closed = read_until_closed(connection, quiet=3)
    # Refused as a head past the limit is, after the 401 the head alone earns if that was
    # answered first; the 431 may be lost to the reset a close with unread bytes causes. The
    # request after the trailers is not read.
    answered = statuses(received)
    assert answered in ([b"431"], [b"401", b"431"], [b"401"], []), answered
    assert closed


def test_a_body_that_arrives_after_its_answer_leaves_no_deadline_on_the_connection(
    gateway: GatewayProcess,
) -> None:
    """Attack: POST with a Content-Length and no token; wait for the 401 (answered from the
    head), then send the body, then nothing. The keep-alive timer armed when the answer was
    complete is cancelled by the body's bytes (data_received), and the read deadline armed when
    the request began is cancelled when the request completes (on_message_complete): nothing
    re-arms either, so the connection stays open and idle for ever. Measured: still open after
    60 s on a served gateway (read deadline 10 s, keep-alive 5 s); each such connection holds a
    descriptor, which is what the read deadline exists to prevent.

    Breaks README, Security, Slow clients: "A request must arrive whole ... else the
    connection is closed: uvicorn alone waits forever, and about a thousand connections
    dripping headers used up every descriptor"; and http_protocol's "Keep-alive idleness
    between requests is uvicorn's own timeout_keep_alive". Fix in server/http_protocol.py:
    on_message_complete, when the answer is already complete and nothing is queued, arm the
    keep-alive timer (or the read deadline) again."""
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(QUERY)
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        connection.sendall(head)
        answered = b""
        while b"\r\n\r\n" not in answered:
            answered += connection.recv(1 << 16)
        assert statuses(answered) == [b"401"]
        time.sleep(0.2)  # the body in a read of its own, after the answer
        connection.sendall(QUERY)
        # Either deadline would have closed it by now, with time to spare on a busy machine.
        _, closed = read_until_closed(connection, quiet=KEEP_ALIVE_S + READ_TIMEOUT_S + 10)
    assert closed


def test_a_request_already_answered_gets_no_second_answer_for_its_malformed_body(
    gateway: GatewayProcess,
) -> None:
    """Attack: a chunked POST without a token is answered 401 from its head; the client then
    sends a malformed chunk (``zz``). The parse error is answered 400 as well
    (DeadlineHttpToolsProtocol._refuse_invalid_request: the answer is complete, so _refuse
    writes the refusal at once): two answers to one request. A client or front end that has
    sent its next request on the connection takes the 400 as that request's answer (response
    queue desynchronisation); the same happens after a complete 200 (a 3.5 MB GraphiQL script
    answered to a GET with a chunked body, then a bad chunk: 200, body, then 400).

    Breaks README, Security, Slow clients: "Every such refusal, and the 400 for a malformed
    request, comes after the answers to the requests before it, in order, and then the
    connection is closed", and RFC 9112 9.3.2 (one answer per request, in order). Fix in
    server/http_protocol.py _refuse_invalid_request: when the malformed bytes are the body of
    a request already answered, close the connection without writing anything."""
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        connection.sendall(head)
        answered = b""
        while b"\r\n\r\n" not in answered:
            answered += connection.recv(1 << 16)
        connection.sendall(b"zz\r\n")  # not a chunk size
        received, closed = read_until_closed(connection, quiet=3)
    assert statuses(answered + received) == [b"401"], received[:200]
    assert closed


def test_a_head_padded_with_whitespace_in_one_read_is_held_to_the_head_limit(
    gateway: GatewayProcess,
) -> None:
    """Attack: a 200 KB head sent at once whose bulk is whitespace before a header's value.
    When the head is read whole in one read, its size is taken from the parsed URL and header
    values (http_protocol._head_size), and httptools strips the whitespace before a value: the
    head measures under 64 KB and is served. (Sent over several reads the same head is 431:
    those count raw bytes.) Parsing whitespace is cheap, so this evades the stated limit more
    than it costs; the loopback send arrives in one read whenever the gateway is idle.

    Breaks README, Security, Slow clients: "A request's head may take 64 KB (431 past it". Fix
    in server/http_protocol.py: compare the bytes the head took in the read (the parser's
    position, or the read's size less what follows the head) rather than what parsing kept."""
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding:" + b" " * 100_000 + b"a\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        received, _ = read_until_closed(connection, quiet=2)
    assert statuses(received) == [b"431"], received[:200]


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
