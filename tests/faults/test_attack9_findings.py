"""Attack round 9: each test is a hole found in the newest code, and fails until it is fixed."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from joserfc.jwk import RSAKey

from ehr_gateway.runtime.identity import STALE_KEYS_S, IssuerKeys, TokenVerifier, Unauthenticated
from tests.conftest import Gateway
from tests.gql.test_cloudflare_access_token import CLIENT_ID, athena_tenant, save
from tests.issuers import new_key, serve_issuer
from tests.processes import GatewayProcess, started_gateway
from tests.raw_http import HEALTHZ, connect, read_until_closed, statuses
from tests.runtime.test_issuer_keys import POLICY, UNAVAILABLE, Issuer, kids, made_stale


async def test_a_token_verified_before_its_key_was_rotated_out_keeps_verifying() -> None:
    """The attack: a token signed with a key the issuer later removes (compromised, rotated
    out), presented once while the key was published, with an ``exp`` of the signer's choosing.
    The README (Security) says a key the issuer has removed stops verifying once the new set is
    read; TokenVerifier keeps every token it verified until the token's own expiry and answers
    it from that cache without looking at the keys, so the removed key's token goes on
    verifying, on the one verifier the gateway holds, for as long as its exp says."""
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


async def test_a_token_verified_before_the_keys_became_unusable_keeps_verifying() -> None:
    """The attack: the issuer is down (or made unreachable) past STALE_KEYS_S. The README says
    callers are then refused until a read succeeds, so that a key removed meanwhile does not
    verify for ever; a token verified before the outage is still answered from the verifier's
    cache, whatever the state of the keys."""
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


async def test_a_cloudflare_access_secret_that_no_header_can_carry_is_saved(
    gateway: Gateway, tenant_id: str
) -> None:
    """The attack (an integrator's paste, or a hostile one): a cfAccessClientSecret with text
    outside printable ASCII inside it (an accented letter, a zero-width space between two
    halves). The README (Security) says header values are printable ASCII
    (INVALID_HEADER_VALUE), and the secret is sent as the CF-Access-Client-Secret header, as the
    client id is, whose value is held to printable ASCII; the secret is only refused control
    characters and surrounding white space, so it is saved, readiness counts it set, and no HTTP
    client can send it (httpx refuses a non-ASCII header value): every call to the EHR fails."""
    await athena_tenant(gateway, tenant_id)
    integrator = gateway.as_caller(tenants=[tenant_id], roles=["integrator"])

    saved = await save(
        integrator,
        tenant_id,
        cfAccessClientId=CLIENT_ID,
        cfAccessClientSecret=f"cf-{uuid.uuid4().hex}\u200b{uuid.uuid4().hex}é",
    )

    assert saved["__typename"] == "ValidationFailed", saved
    assert [error["code"] for error in saved["errors"]] == ["INVALID_HEADER_VALUE"]


# More than the body limit (EHRGW_MAX_BODY_BYTES, 256 KiB by default) and the head limit (64 KiB)
# many times over, sent a mebibyte at a time.
_FRAMING_BYTES = 16 << 20
_MEBIBYTE = b"a" * (1 << 20)
QUERY = b'{"query":"{__typename}"}'


@pytest.fixture(scope="module")
def gateway_process(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(tmp_path_factory.mktemp("attack9"), database_url) as running:
        yield running


def _send(connection: socket.socket, *parts: bytes) -> bool:
    """Whether all of ``parts`` were sent before the gateway closed the connection."""
    try:
        for part in parts:
            connection.sendall(part)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def test_a_chunk_extension_of_megabytes_is_read_whole(gateway_process: GatewayProcess) -> None:
    """The attack: a chunked POST whose one chunk of 24 bytes carries a chunk extension
    (``;x=aaaa…``) of 16 MiB. The README (Security, Cost of a request) says bodies are capped at
    EHRGW_MAX_BODY_BYTES and that trailers and whitespace count against the 64 KiB head limit;
    chunk extensions count against neither (http_protocol counts only heads and trailer
    sections, the gate only the chunks' data), so the gateway reads the 16 MiB and answers 200.
    Nothing bounds the size but the 10 s read deadline: 300 MiB were read in 0.7 s (0.48 s of
    the gateway's CPU) in one request, with the load average near 3.5."""
    token = gateway_process.token.encode()
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % token
    )
    extension = [_MEBIBYTE] * (_FRAMING_BYTES >> 20)
    with connect(gateway_process, timeout=20) as connection:
        sent = _send(
            connection,
            head,
            b"%x;x=" % len(QUERY),
            *extension,
            b"\r\n" + QUERY + b"\r\n0\r\n\r\n",
        )
        received, _ = read_until_closed(connection, quiet=5)

    assert not (sent and statuses(received) == [b"200"]), received[:200]


def test_a_body_after_an_early_answer_is_read_past_the_body_limit(
    gateway_process: GatewayProcess,
) -> None:
    """The attack, with no credentials at all: a chunked POST answered 401 from its head, then a
    body of 16 MiB, then another request on the same connection. The README says bodies over
    EHRGW_MAX_BODY_BYTES get 413; a body the gate never reads (its request answered from the
    head) is read and dropped whatever its size, the connection kept for the next request:
    only the 10 s read deadline bounds it (300 MiB went through in 0.2 s, 0.12 s of the
    gateway's CPU). A fix would close the connection once the dropped body passes the body
    limit (as nginx stops discarding a body after a bound and closes)."""
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    with connect(gateway_process, timeout=20) as connection:
        _send(
            connection,
            head,
            b"%x\r\n" % _FRAMING_BYTES,
            *[_MEBIBYTE] * (_FRAMING_BYTES >> 20),
            b"\r\n0\r\n\r\n" + HEALTHZ,
        )
        received, _ = read_until_closed(connection, quiet=5)

    assert statuses(received) == [b"401"], received[:300]
