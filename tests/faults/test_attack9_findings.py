"""Attack round 9: each test is a hole found in the newest code, and fails until it is fixed."""

from __future__ import annotations

import uuid

import httpx
import pytest
from joserfc.jwk import RSAKey

from ehr_gateway.runtime.identity import STALE_KEYS_S, IssuerKeys, TokenVerifier, Unauthenticated
from tests.conftest import Gateway
from tests.gql.test_cloudflare_access_token import CLIENT_ID, athena_tenant, save
from tests.issuers import new_key, serve_issuer
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
