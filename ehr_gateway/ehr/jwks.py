"""JWK Sets (the JKU) and the JWTs Epic signs with them: which key sets are acceptable, where an
issuer publishes its keys, and how an inbound JWT is checked."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import JWKRegistry, KeySet

# Asymmetric algorithms only: "none" and HMAC (which would let a public key act as a shared
# secret) are never accepted.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384")
_KEY_TYPES = {"RSA", "EC"}
_ALG_FAMILIES = {"RSA": ("RS", "PS"), "EC": ("ES",)}
# RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used with these algorithms". A
# smaller modulus can be factored (512 bits in hours of rented computing), and whoever does
# signs tokens of any subject; joserfc only warns.
MIN_RSA_BITS = 2048
# The curve each ES algorithm signs on (RFC 7518 3.4): a key on another (secp256k1, say) verifies
# nothing the gateway accepts.
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
# How far a JWT's exp and nbf may be past, or ahead of, this machine's clock: the issuer's clock
# and ours drift apart (the deployment sets it: EHRGW_CLOCK_SKEW_S).
LEEWAY_S = 60


class JwksError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PublicKey:
    kid: str
    kty: str
    alg: str | None
    thumbprint: str


def read_jwks(document: Any) -> tuple[list[PublicKey], KeySet]:
    """The public keys of a JWK Set; raises JwksError for anything else (private key material,
    symmetric keys, no keys, keys without an id, unsupported algorithms, RSA keys under
    MIN_RSA_BITS, EC keys on a curve no accepted algorithm signs with). One such key refuses the
    whole set, naming it: an integrator records this set (an Epic JKU) and is shown why."""
    keys = _key_list(document)
    if not keys:
        raise JwksError("NO_KEYS", "the JWK Set has no keys")
    summaries = []
    for key in keys:
        if not isinstance(key, dict):
            raise JwksError("NOT_A_JWKS", "a key is not a JSON object")
        if _PRIVATE_MEMBERS & key.keys():
            raise _private_material()
        summaries.append(_public_key(key))
    return summaries, KeySet.import_key_set({"keys": keys})


def read_signing_keys(document: Any) -> KeySet:
    """The keys of a JWK Set that verify signatures the gateway accepts: ``use`` absent or
    ``sig`` (and ``key_ops``, if given, including ``verify``), and every check read_jwks makes.
    The others are skipped rather than refusing the set: an identity provider publishes keys
    for other uses beside its signing keys (Keycloak an RSA-OAEP encryption key on every realm)
    and the set is read unattended, with no one to fix it. Raises JwksError when the document is
    not a JWK Set, when any key carries private or symmetric material (the issuer is leaking
    secrets: nothing it publishes is trusted), or when no usable key is left."""
    usable = []
    for key in _key_list(document):
        if not isinstance(key, dict):
            continue
        if _PRIVATE_MEMBERS & key.keys():
            raise _private_material()
        operations = key.get("key_ops")
        if key.get("use", "sig") != "sig" or (
            operations is not None and not (isinstance(operations, list) and "verify" in operations)
        ):
            continue
        try:
            _public_key(key)
        except JwksError:
            continue
        usable.append(key)
    if not usable:
        raise JwksError(
            "NO_USABLE_KEYS", "the JWK Set has no key that verifies an accepted algorithm"
        )
    return KeySet.import_key_set({"keys": usable})


def _key_list(document: Any) -> list[Any]:
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksError("NOT_A_JWKS", "the document is not a JWK Set")
    return keys


def _private_material() -> JwksError:
    return JwksError(
        "PRIVATE_KEY_MATERIAL", "the JWK Set contains private or symmetric key material"
    )


def _public_key(key: dict[str, Any]) -> PublicKey:
    """``key`` as an accepted public signing key (its private members already ruled out)."""
    kty = key.get("kty")
    if kty not in _KEY_TYPES:
        raise JwksError("UNSUPPORTED_KEY", "only RSA and EC public keys are accepted")
    kid = key.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwksError("MISSING_KID", "every key needs a kid")
    alg = key.get("alg")
    if alg is not None and alg not in ALLOWED_ALGORITHMS:
        raise JwksError("UNSUPPORTED_ALG", "a key names an algorithm that is not accepted")
    if alg is not None and alg[:2] not in _ALG_FAMILIES[kty]:
        raise JwksError("UNSUPPORTED_ALG", f"key {_named(kid)} names {alg}, not an {kty} algorithm")
    if kty == "RSA":
        # Measured before the key is read: joserfc reads a weak key with a warning, which a
        # refused key has no reason to print.
        bits = _modulus_bits(key)
        if bits is not None and bits < MIN_RSA_BITS:
            raise JwksError(
                "WEAK_KEY",
                f"key {_named(kid)} is a {bits}-bit RSA key: at least {MIN_RSA_BITS} bits needed",
            )
    else:
        curve = key.get("crv")
        if curve not in _CURVES.values() or (alg is not None and _CURVES.get(alg) != curve):
            raise JwksError(
                "UNSUPPORTED_CURVE",
                f"key {_named(kid)} is on a curve no accepted algorithm"
                + (f" ({alg})" if alg is not None else "")
                + " signs with",
            )
    try:
        thumbprint = JWKRegistry.import_key(key).thumbprint()
    except (JoseError, ValueError, TypeError):
        raise JwksError("INVALID_KEY", "a key cannot be read") from None
    return PublicKey(kid, kty, alg, thumbprint)


def _modulus_bits(key: dict[str, Any]) -> int | None:
    """The size of an RSA key's modulus, or None if the key does not have the members of one
    (it is then refused as unreadable)."""
    n = key.get("n")
    if not isinstance(n, str) or not isinstance(key.get("e"), str):
        return None
    try:
        modulus = base64.b64decode(n + "=" * (-len(n) % 4), altchars=b"-_", validate=True)
    except ValueError:
        return None
    return int.from_bytes(modulus, "big").bit_length()


def _named(kid: str) -> str:
    """The kid for a message, if it is short printable text (it comes from the key set)."""
    return repr(kid) if len(kid) <= 64 and kid.isprintable() else "(a long kid)"


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def conventional_jwks_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/jwks.json"


def jwks_url_from_discovery(document: Any) -> str | None:
    uri = document.get("jwks_uri") if isinstance(document, dict) else None
    return uri if isinstance(uri, str) and uri else None


class JwtRejected(ValueError):
    def __init__(self, code: str, message: str, token_jku: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.token_jku = token_jku  # the JKU the token named, where that is why it is refused


@dataclass(frozen=True, slots=True)
class JwtHeader:
    alg: str
    kid: str | None
    jku: str | None
    typ: str | None = None


def read_header(token: str) -> JwtHeader:
    """The JWT's header, checked before any key is looked up."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeError):
        raise JwtRejected("MALFORMED", "the token is not a compact JWS") from None
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise JwtRejected("DISALLOWED_ALG", "the token's algorithm is not accepted")
    kid, jku, typ = header.get("kid"), header.get("jku"), header.get("typ")
    return JwtHeader(
        alg,
        kid if isinstance(kid, str) else None,
        jku if isinstance(jku, str) else None,
        typ if isinstance(typ, str) else None,
    )


# The JWTs Epic signs for the calls it makes (pause and resume, click to call) are plain JWTs:
# `typ` "JWT" or none (RFC 7519 section 5.1; a media type, so case-insensitive, "application/"
# optional). A token that says it is of another kind (an OAuth access token, at+jwt; an ID
# token; a DPoP proof; a logout or security event token) was made for another purpose and is
# not accepted in place of one, even when the same keys signed it (RFC 8725 section 3.11).
_PLAIN_JWT_TYPES = frozenset({"jwt", "application/jwt"})


def check_plain_jwt(header: JwtHeader) -> None:
    """Refuse a token whose ``typ`` names another kind of token than a plain JWT."""
    if header.typ is not None and header.typ.lower() not in _PLAIN_JWT_TYPES:
        raise JwtRejected("WRONG_TYPE", "the token is not a plain JWT (its typ names another kind)")


def audience_prefix(audience: str) -> str | None:
    """What an ``aud`` under ``audience`` starts with, if the audience names a place URLs can be
    under: an http(s) URL with a host and a path (the gateway's base path URL, an endpoint's
    parent), without a query or fragment. Anything else is matched exactly: under an origin
    alone (https://gateway.example) are every tenant's endpoints on that gateway, under
    https:// every https URL, and a name (an RFC 7519 StringOrURI such as epic-gateway) has
    nothing under it."""
    try:
        parts = urlsplit(audience)
        host = parts.hostname
    except ValueError:
        return None
    if (
        parts.scheme not in ("http", "https")
        or not host
        or parts.query
        or parts.fragment
        or "#" in audience
        or "?" in audience
        or not parts.path.strip("/")
    ):
        return None
    return audience.rstrip("/") + "/"


def audience_matches(claim: Any, audiences: Sequence[str]) -> bool:
    """Whether the ``aud`` claim (a string or a list of them) names one of ``audiences``, or a
    URL under one of them on a path boundary (an endpoint beneath the base URL the audience
    names; see ``audience_prefix`` for which audiences have URLs under them)."""
    values = claim if isinstance(claim, list) else [claim]
    for value in values:
        if not isinstance(value, str):
            continue
        for audience in audiences:
            if value == audience:
                return True
            prefix = audience_prefix(audience)
            if prefix is not None and value.startswith(prefix):
                return True
    return False


def verify_jwt(
    token: str,
    header: JwtHeader,
    keys: KeySet,
    issuer: str,
    audiences: Sequence[str] | None = None,
    leeway_s: int = LEEWAY_S,
) -> dict[str, Any]:
    """The claims of ``token`` if its signature, issuer and validity period (give or take
    ``leeway_s``) hold, and (given ``audiences``) it has an ``aud`` that ``audience_matches``."""
    try:
        decoded = jwt.decode(token, keys, algorithms=[header.alg])
    except BadSignatureError:
        raise JwtRejected("BAD_SIGNATURE", "the signature does not verify") from None
    except JoseError:
        raise JwtRejected("MALFORMED", "the token cannot be decoded") from None
    options: dict[str, jwt.ClaimsOption] = {
        "iss": {"essential": True, "value": issuer},
        "exp": {"essential": True},
    }
    if audiences is not None:
        options["aud"] = {"essential": True}  # which values: audience_matches, below
    registry = jwt.JWTClaimsRegistry(now=int(time.time()), leeway=leeway_s, **options)
    try:
        registry.validate(decoded.claims)
    except ExpiredTokenError:
        raise JwtRejected("EXPIRED", "the token has expired") from None
    except MissingClaimError as error:
        raise JwtRejected("MISSING_CLAIM", str(error.description)) from None
    except InvalidClaimError as error:
        claim = getattr(error, "claim", None)
        if claim == "nbf":
            raise JwtRejected("NOT_YET_VALID", "the token is not valid yet") from None
        code = {"iss": "WRONG_ISSUER", "aud": "WRONG_AUDIENCE"}.get(str(claim), "INVALID_CLAIM")
        raise JwtRejected(code, str(error.description)) from None
    except InvalidTokenError:
        raise JwtRejected("NOT_YET_VALID", "the token is not valid yet") from None
    if audiences is not None and not audience_matches(decoded.claims.get("aud"), audiences):
        raise JwtRejected("WRONG_AUDIENCE", "the token is not meant for this tenant's gateway")
    return dict(decoded.claims)


# What an observation keeps of a token: bounded, so that a forged header cannot make the
# gateway store or show more than this.
MAX_OBSERVED_URL = 2048
MAX_OBSERVED_KID = 256
MAX_OBSERVED_ALG = 16


@dataclass(frozen=True, slots=True)
class TokenHeaders:
    """What an unverified JWT says about where its keys are: its header's ``jku``, ``kid`` and
    ``alg`` and its ``iss`` claim. Nothing here is trusted: the signature is not checked."""

    jku: str
    kid: str | None
    alg: str | None
    issuer: str | None


def _bounded(value: Any, limit: int) -> str | None:
    """``value`` if it is printable text of at most ``limit`` characters."""
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    return None


def peek_token(token: str) -> TokenHeaders:
    """The header and issuer of a compact JWS, read without verifying it (for showing an
    integrator which JKU a token names). Raises JwtRejected: MALFORMED for anything that is not a
    compact JWS with a JSON header, NO_JKU when the header names no usable ``jku`` URL."""
    if len(token) > 16_384:
        raise JwtRejected("TOO_LONG", "the token is longer than 16384 characters")
    try:
        extracted = jws.extract_compact(token.encode())
    except (JoseError, ValueError, UnicodeError):
        raise JwtRejected("MALFORMED", "the token is not a compact JWS") from None
    header = extracted.protected
    jku = _bounded(header.get("jku"), MAX_OBSERVED_URL)
    if jku is None or urlsplit(jku).scheme not in ("https", "http") or not urlsplit(jku).netloc:
        raise JwtRejected("NO_JKU", "the token's header names no jku URL")
    try:
        claims = json.loads(extracted.payload)
    except (ValueError, UnicodeError):
        claims = None
    issuer = _bounded(claims.get("iss"), MAX_OBSERVED_URL) if isinstance(claims, dict) else None
    return TokenHeaders(
        jku=jku,
        kid=_bounded(header.get("kid"), MAX_OBSERVED_KID),
        alg=_bounded(header.get("alg"), MAX_OBSERVED_ALG),
        issuer=issuer,
    )
