"""discoverJku, refreshJku and verifyEpicJwt against a real OpenID issuer on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER, UPDATE_EHR
from tests.epic_issuer import AUDIENCE, Issuer, serve_issuer

DISCOVER = """
mutation Discover($tenantId: ID!, $issuerUrl: String) {
  discoverJku(tenantId: $tenantId, issuerUrl: $issuerUrl) {
    __typename
    ... on SettingsSaved {
      settings {
        version
        ehr { ... on EpicSettings { jkuServerUrl jwtIssuerUrl } }
        jkuKeySet { url fetchedAt keys { kid kty alg thumbprint } }
      }
    }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
REFRESH = """
mutation Refresh($tenantId: ID!) {
  refreshJku(tenantId: $tenantId) {
    __typename
    ... on SettingsSaved { settings { jkuKeySet { keys { kid } } } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
VERIFY = """
query Verify($tenantId: ID!, $token: String!) {
  verifyEpicJwt(tenantId: $tenantId, token: $token) {
    __typename
    ... on JwtVerified { claims kid alg }
    ... on JwtRejected { code message }
  }
}
"""


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    async with serve_issuer() as served:
        yield served


async def _epic_tenant(gateway: Gateway, tenant_id: str, pattern: bool = True) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id,
        input={"epic": {"enableDefaultJkuServerUrlPattern": pattern, "jwtAudience": AUDIENCE}},
    )  # fmt: skip


async def _discover(gateway: Gateway, tenant_id: str, issuer_url: str) -> dict[str, Any]:
    data = await gateway.execute(DISCOVER, tenantId=tenant_id, issuerUrl=issuer_url)
    result: dict[str, Any] = data["discoverJku"]
    return result


async def _verify(gateway: Gateway, tenant_id: str, token: str) -> dict[str, Any]:
    data = await gateway.execute(VERIFY, tenantId=tenant_id, token=token)
    result: dict[str, Any] = data["verifyEpicJwt"]
    return result


async def test_discovery_finds_the_key_set_and_stores_its_keys(
    local_gateway: Gateway, issuer: Issuer, tenant_id: str
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    result = await _discover(local_gateway, tenant_id, issuer.url)
    assert result["__typename"] == "SettingsSaved", result
    settings = result["settings"]
    assert settings["ehr"] == {"jkuServerUrl": f"{issuer.url}/keys", "jwtIssuerUrl": issuer.url}
    [key] = settings["jkuKeySet"]["keys"]
    assert (key["kid"], key["kty"]) == ("k1", "RSA")
    assert key["thumbprint"] == issuer.keys[0].thumbprint()


async def test_without_discovery_the_conventional_path_is_used(
    local_gateway: Gateway, issuer: Issuer, tenant_id: str
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    result = await _discover(local_gateway, tenant_id, f"{issuer.url}/plain")
    assert result["settings"]["jkuKeySet"]["url"] == f"{issuer.url}/plain/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("issuer_path", "private", "code"),
    [
        ("", True, "PRIVATE_KEY_MATERIAL"),
        ("/empty", False, "NO_KEYS"),
        ("/html", False, "HTTP_STATUS"),
    ],
)
async def test_a_key_set_that_cannot_be_trusted_is_refused_and_nothing_stored(
    local_gateway: Gateway,
    issuer: Issuer,
    tenant_id: str,
    issuer_path: str,
    private: bool,
    code: str,
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    issuer.private_in_jwks = private
    result = await _discover(local_gateway, tenant_id, issuer.url + issuer_path)
    assert result["__typename"] == "ValidationFailed"
    assert result["errors"][0]["code"] == code
    assert "BEGIN" not in str(result)  # no key material echoed
    refreshed = await local_gateway.execute(REFRESH, tenantId=tenant_id)
    assert refreshed["refreshJku"]["__typename"] == "ValidationFailed"  # nothing was stored


async def test_a_jwt_signed_by_the_jku_is_verified(
    local_gateway: Gateway, issuer: Issuer, tenant_id: str
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    await _discover(local_gateway, tenant_id, issuer.url)
    result = await _verify(local_gateway, tenant_id, issuer.token(issuer.keys[0], sub="click"))
    assert result["__typename"] == "JwtVerified", result
    assert (result["kid"], result["alg"], result["claims"]["sub"]) == ("k1", "RS384", "click")


async def test_keys_are_cached_and_fetched_again_once_for_an_unknown_kid(
    local_gateway: Gateway, issuer: Issuer, tenant_id: str
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    await _discover(local_gateway, tenant_id, issuer.url)
    served = issuer.jwks_served
    for _ in range(3):
        await _verify(local_gateway, tenant_id, issuer.token(issuer.keys[0]))
    assert issuer.jwks_served == served  # from the cache

    rotated = issuer.rotate()
    result = await _verify(local_gateway, tenant_id, issuer.token(rotated))
    assert result["__typename"] == "JwtVerified"
    assert issuer.jwks_served == served + 1

    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    assert (await _verify(local_gateway, tenant_id, issuer.token(stranger)))["code"] == (
        "UNKNOWN_KID"
    )


def _part(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_part({'alg': 'none', 'kid': 'k1'})}.{_part(claims)}."


def _hmac_with_public_key(issuer: Issuer) -> str:
    """HS256 keyed with the public key's PEM: the classic algorithm confusion (built by hand,
    since the JOSE library refuses to make one)."""
    signing_input = (
        f"{_part({'alg': 'HS256', 'kid': 'k1'})}."
        f"{_part({'iss': issuer.url, 'exp': int(time.time()) + 60})}"
    )
    pem = issuer.keys[0].as_pem(private=False)
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda i: i.token(i.keys[0], exp=int(time.time()) - 600), "EXPIRED"),
        (lambda i: i.token(i.keys[0], nbf=int(time.time()) + 600), "NOT_YET_VALID"),
        (lambda i: i.token(i.keys[0], iss="https://impostor.example"), "WRONG_ISSUER"),
        (lambda i: i.token(i.keys[0])[:-6] + "AAAAAA", "BAD_SIGNATURE"),
        (lambda i: _unsigned({"iss": i.url, "exp": int(time.time()) + 60}), "DISALLOWED_ALG"),
        (_hmac_with_public_key, "DISALLOWED_ALG"),
        (
            lambda i: jwt.encode(
                {"alg": "RS384", "kid": "k1", "jku": "https://attacker.example/keys"},
                {"iss": i.url, "exp": int(time.time()) + 60}, i.keys[0], algorithms=["RS384"],
            ),
            "JKU_MISMATCH",
        ),
        (lambda i: "not-a-jwt", "MALFORMED"),
    ],
)  # fmt: skip
async def test_a_jwt_that_is_not_genuine_is_rejected_with_the_reason(
    local_gateway: Gateway, issuer: Issuer, tenant_id: str, make: Any, code: str
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    await _discover(local_gateway, tenant_id, issuer.url)
    result = await _verify(local_gateway, tenant_id, make(issuer))
    assert (result["__typename"], result["code"]) == ("JwtRejected", code)


async def test_verifying_before_the_jku_is_configured_is_refused(
    local_gateway: Gateway, issuer: Issuer, tenant_id: str
) -> None:
    await _epic_tenant(local_gateway, tenant_id)
    result = await _verify(local_gateway, tenant_id, issuer.token(issuer.keys[0]))
    assert result["code"] == "NOT_CONFIGURED"


@pytest.mark.parametrize("issuer_url", ["https://localhost/issuer", "https://10.1.2.3/issuer"])
async def test_an_issuer_at_a_private_address_is_refused_at_the_issuer_url(
    gateway: Gateway, tenant_id: str, issuer_url: str
) -> None:
    """The refusal names the field the URL came from (the argument), not the JKU Server URL,
    which the caller did not send and discovery would only have derived."""
    await _epic_tenant(gateway, tenant_id)

    result = await _discover(gateway, tenant_id, issuer_url)

    assert result["__typename"] == "ValidationFailed", result
    assert [(e["path"], e["code"]) for e in result["errors"]] == [
        (["issuerUrl"], "PRIVATE_ADDRESS")
    ]
