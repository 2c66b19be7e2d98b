"""JWK Sets and Epic's JWTs (ehr/jwks.py): which key sets are accepted, where an issuer's keys
are, and how a JWT is checked, with the code each refusal gives."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from ehr_gateway.ehr.jwks import (
    JwksError,
    JwtRejected,
    audience_matches,
    check_plain_jwt,
    conventional_jwks_url,
    discovery_url,
    jwks_url_from_discovery,
    peek_token,
    read_header,
    read_jwks,
    read_signing_keys,
    verify_jwt,
)
from tests.weak_keys import WEAK_RSA_PUBLIC_KEY

ISSUER = "https://issuer.example.test/oauth2"
AUDIENCE = "https://gateway.example.test/gateways/abc"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
EC = ECKey.generate_key("P-384", parameters={"kid": "e1"})
SECP256K1 = ECKey.generate_key("secp256k1", parameters={"kid": "k256"})


def public(key: RSAKey | ECKey, **members: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **members}


def jwks_refusal(document: Any) -> str:
    with pytest.raises(JwksError) as raised:
        read_jwks(document)
    return raised.value.code


def test_a_jwks_of_rsa_and_ec_public_keys_is_read_with_thumbprints() -> None:
    summaries, keys = read_jwks({"keys": [public(KEY, alg="RS384"), public(EC)]})
    assert [(s.kid, s.kty, s.alg) for s in summaries] == [
        ("k1", "RSA", "RS384"),
        ("e1", "EC", None),
    ]
    assert summaries[0].thumbprint == KEY.thumbprint()
    assert isinstance(keys, KeySet)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ([], "NOT_A_JWKS"),
        ({"keys": "k1"}, "NOT_A_JWKS"),
        ({"keys": []}, "NO_KEYS"),
        ({"keys": ["k1"]}, "NOT_A_JWKS"),
        ({"keys": [KEY.as_dict(private=True)]}, "PRIVATE_KEY_MATERIAL"),
        ({"keys": [OctKey.generate_key(256).as_dict(private=True)]}, "PRIVATE_KEY_MATERIAL"),
        ({"keys": [{"kty": "oct", "kid": "s"}]}, "UNSUPPORTED_KEY"),
        ({"keys": [{**public(KEY), "kid": ""}]}, "MISSING_KID"),
        ({"keys": [public(KEY, alg="HS256")]}, "UNSUPPORTED_ALG"),
        ({"keys": [public(KEY, alg="none")]}, "UNSUPPORTED_ALG"),
        ({"keys": [{"kty": "RSA", "kid": "bad", "n": "AQAB"}]}, "INVALID_KEY"),
    ],
)
def test_anything_but_a_set_of_identified_public_keys_is_refused(document: Any, code: str) -> None:
    assert jwks_refusal(document) == code


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ({**WEAK_RSA_PUBLIC_KEY, "alg": "RS256"}, "WEAK_KEY"),
        (WEAK_RSA_PUBLIC_KEY, "WEAK_KEY"),
        (public(SECP256K1), "UNSUPPORTED_CURVE"),
        (public(EC, alg="ES256"), "UNSUPPORTED_CURVE"),  # a P-384 key
        (public(EC, alg="RS256"), "UNSUPPORTED_ALG"),
        (public(KEY, alg="ES256"), "UNSUPPORTED_ALG"),
    ],
)
def test_a_key_set_with_a_key_too_weak_or_on_the_wrong_curve_is_refused_naming_it(
    key: dict[str, Any], code: str
) -> None:
    """An Epic JKU is recorded by an integrator (discoverJku, refreshJku, adoptObservedJku), who
    is told which key is wrong rather than have it left out unnoticed."""
    with pytest.raises(JwksError) as raised:
        read_jwks({"keys": [public(KEY), key]})
    assert raised.value.code == code
    assert repr(key["kid"]) in raised.value.message


def test_of_an_issuer_s_key_set_only_the_signing_keys_are_kept() -> None:
    """An identity provider's key set holds keys for other uses beside its signing keys
    (Keycloak's RSA-OAEP encryption key on every realm): each is left out, not fatal."""
    others = [
        public(RSAKey.generate_key(2048, parameters={"kid": "enc"}), alg="RSA-OAEP", use="enc"),
        public(RSAKey.generate_key(2048, parameters={"kid": "wrap"}), key_ops=["wrapKey"]),
        {**OKPKey.generate_key("Ed25519").as_dict(private=False), "kid": "ed"},
        {**WEAK_RSA_PUBLIC_KEY, "alg": "RS256", "use": "sig"},
        public(SECP256K1),
        public(KEY, kid="", alg="RS256"),
        public(KEY, kid="hs", alg="HS256"),
        {"kty": "RSA", "kid": "bad", "n": "AQAB"},
        "not a key",
    ]
    keys = read_signing_keys(
        {"keys": [public(KEY, alg="RS256", use="sig"), *others, public(EC, key_ops=["verify"])]}
    )
    assert [key.kid for key in keys] == ["k1", "e1"]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"keys": "k1"}, "NOT_A_JWKS"),
        ({"keys": []}, "NO_USABLE_KEYS"),
        ({"keys": [public(KEY, use="enc"), WEAK_RSA_PUBLIC_KEY]}, "NO_USABLE_KEYS"),
        ({"keys": [public(KEY), KEY.as_dict(private=True)]}, "PRIVATE_KEY_MATERIAL"),
        (
            {"keys": [public(KEY), OctKey.generate_key(256).as_dict(private=True)]},
            "PRIVATE_KEY_MATERIAL",
        ),
    ],
)
def test_an_issuer_s_key_set_without_a_signing_key_or_leaking_a_secret_is_refused(
    document: Any, code: str
) -> None:
    with pytest.raises(JwksError) as raised:
        read_signing_keys(document)
    assert raised.value.code == code


def test_where_an_issuer_publishes_its_keys() -> None:
    assert discovery_url(ISSUER + "/") == ISSUER + "/.well-known/openid-configuration"
    assert conventional_jwks_url(ISSUER) == ISSUER + "/.well-known/jwks.json"
    assert jwks_url_from_discovery({"jwks_uri": ISSUER + "/keys"}) == ISSUER + "/keys"
    assert jwks_url_from_discovery({"jwks_uri": ""}) is None
    assert jwks_url_from_discovery(["jwks_uri"]) is None


@pytest.mark.parametrize(
    ("claim", "matches"),
    [
        (AUDIENCE, True),
        (AUDIENCE + "/epic/cti", True),
        ([AUDIENCE + "/cti", "other"], True),
        (AUDIENCE + "def", False),  # another gateway id, not a URL under this one
        ("https://gateway.example.test/gateways", False),
        (["other"], False),
        (None, False),
        ([42], False),
    ],
)
def test_an_audience_is_the_configured_one_or_a_url_under_it(claim: Any, matches: bool) -> None:
    assert audience_matches(claim, [AUDIENCE]) is matches


# Audiences with nothing under them: an origin alone (every tenant's endpoints on the gateway
# are under it), a URL without a host (under https:// is every https URL), a name (RFC 7519's
# StringOrURI), a URL with a query. Each matches only itself.
EXACT_ONLY = [
    ("https://gateway.example.test", "https://gateway.example.test/gateways/other-tenant/pause"),
    ("https://gateway.example.test/", "https://gateway.example.test/gateways/other-tenant"),
    ("https://", "https://attacker.example/cti"),
    ("https:", "https://attacker.example/cti"),
    ("epic-gateway", "epic-gateway/anything"),
    ("https://gateway.example.test/cti?tenant=a", "https://gateway.example.test/cti?tenant=a/b"),
]


@pytest.mark.parametrize(("audience", "other"), EXACT_ONLY)
def test_an_audience_without_a_host_and_path_matches_only_itself(audience: str, other: str) -> None:
    assert audience_matches(audience, [audience]) is True
    assert audience_matches(other, [audience]) is False


def token(key: RSAKey = KEY, alg: str = "RS384", header: dict[str, Any] | None = None,
          **claims: Any) -> str:  # fmt: skip
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(
        {"alg": alg, "kid": key.kid, **(header or {})}, payload, key, algorithms=[alg]
    )


def verified(text: str) -> dict[str, Any]:
    keys = KeySet.import_key_set({"keys": [public(KEY)]})
    header = read_header(text)
    check_plain_jwt(header)
    return verify_jwt(text, header, keys, ISSUER, [AUDIENCE])


def rejected(text: str) -> str:
    with pytest.raises(JwtRejected) as raised:
        verified(text)
    return raised.value.code


def test_a_jwt_signed_by_a_key_of_the_set_for_this_issuer_and_audience_is_verified() -> None:
    assert verified(token(sub="agent-7"))["sub"] == "agent-7"
    assert verified(token(header={"typ": "JWT"}))["iss"] == ISSUER


@pytest.mark.parametrize(
    ("make", "code"),
    [
        pytest.param(lambda: "not a jwt", "MALFORMED", id="not-a-jws"),
        pytest.param(lambda: token(alg="RS256")[:-8] + "AAAAAAAA", "BAD_SIGNATURE", id="signature"),
        pytest.param(lambda: token(RSAKey.generate_key(2048, parameters={"kid": "k1"})),
                     "BAD_SIGNATURE", id="another-key"),
        pytest.param(lambda: token(iss="https://attacker.example"), "WRONG_ISSUER", id="issuer"),
        pytest.param(lambda: token(aud="https://elsewhere.example"), "WRONG_AUDIENCE",
                     id="audience"),
        pytest.param(lambda: token(aud=None), "MISSING_CLAIM", id="no-audience"),
        pytest.param(lambda: token(exp=None), "MISSING_CLAIM", id="no-expiry"),
        pytest.param(lambda: token(exp=int(time.time()) - 3600), "EXPIRED", id="expired"),
        pytest.param(lambda: token(nbf=int(time.time()) + 3600), "NOT_YET_VALID",
                     id="not-yet-valid"),
        pytest.param(lambda: token(header={"typ": "at+jwt"}), "WRONG_TYPE", id="access-token"),
    ],
)  # fmt: skip
def test_a_jwt_is_rejected_with_the_reason(make: Callable[[], str], code: str) -> None:
    # Made when the test runs, not when it is collected: a suite that runs long must not see
    # these tokens expire first (EXPIRED would hide the reason under test).
    assert rejected(make()) == code


@pytest.mark.parametrize("alg", ["none", "HS256", "HS384"])
def test_only_asymmetric_algorithms_are_read(alg: str) -> None:
    with pytest.raises(JwtRejected) as raised:
        read_header(unsigned({"alg": alg, "kid": "k1"}, {"iss": ISSUER}))
    assert raised.value.code == "DISALLOWED_ALG"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A compact JWS whose header no JOSE library would write (peeking reads any)."""
    parts = [json.dumps(part).encode() for part in (header, claims)]
    return ".".join(base64.urlsafe_b64encode(p).decode().rstrip("=") for p in parts) + ".c2ln"


def test_peeking_reads_the_jku_kid_and_issuer_without_trusting_them() -> None:
    seen = peek_token(token(header={"jku": "https://keys.example.test/jwks"}))
    assert (seen.jku, seen.kid, seen.alg, seen.issuer) == (
        "https://keys.example.test/jwks", "k1", "RS384", ISSUER,
    )  # fmt: skip
    for header in ({}, {"jku": "ftp://keys.example.test"}, {"jku": "https://k.example/\n"}):
        with pytest.raises(JwtRejected) as raised:
            peek_token(unsigned({"alg": "RS384", **header}, {"iss": ISSUER}))
        assert raised.value.code == "NO_JKU"
    with pytest.raises(JwtRejected) as raised:
        peek_token("x" * 16_385)
    assert raised.value.code == "TOO_LONG"
