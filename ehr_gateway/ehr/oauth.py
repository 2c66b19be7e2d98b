"""Epic Backend Services OAuth: the client's signing keys and its private_key_jwt assertion
(RFC 7523), and what a token endpoint answers."""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import Field

from ehr_gateway.ehr.fields import SECRET, SettingsModel
from ehr_gateway.ehr.secret import StoredSecret

ASSERTION_ALG = "RS384"
ASSERTION_LIFETIME_S = 300  # Epic accepts at most five minutes
KEY_BITS = 2048
# The longest token lifetime reported: GraphQL's Int is 32-bit signed.
MAX_REPORTED_LIFETIME_S = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")


class SigningKey(SettingsModel):
    """One of the OAuth client's signing keys: the public half as published, the private half
    only encrypted."""

    kid: str = Field(description="The key id (its RFC 7638 thumbprint).")
    public_jwk: dict[str, Any] = Field(description="The public key, as published in the JWKS.")
    private_jwk: Annotated[StoredSecret, SECRET] = Field(description="The private key, encrypted.")
    created_at: datetime = Field(description="When the key was generated.")


def new_key() -> RSAKey:
    key = RSAKey.generate_key(KEY_BITS)
    key.ensure_kid()
    return key


def public_jwk(key: RSAKey) -> dict[str, Any]:
    return {**key.as_dict(private=False), "alg": ASSERTION_ALG, "use": "sig"}


def client_assertion(key: RSAKey, client_id: str, token_url: str) -> str:
    """A signed private_key_jwt client assertion: iss = sub = the client id, aud = the token
    endpoint, a unique jti, and an expiry five minutes out."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_LIFETIME_S,
    }
    header = {"alg": ASSERTION_ALG, "typ": "JWT", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ASSERTION_ALG])


@dataclass(frozen=True, slots=True)
class TokenOutcome:
    """What the token endpoint said. The access token itself is never kept."""

    ok: bool
    status: int
    token_type: str | None = None
    scope: str | None = None
    expires_in: int | None = None
    error: str | None = None
    error_description: str | None = None


def lifetime_s(value: Any) -> int | None:
    """A token endpoint's ``expires_in`` as whole seconds, or None when it gives none that can
    be reported. RFC 6749 writes it as digits; some servers send them as a JSON string, or send
    a whole number with a fraction (3600.0). A negative, fractional or non-finite number, or
    one beyond MAX_REPORTED_LIFETIME_S (68 years), is no lifetime to report: None, as for an
    absent one, rather than a number the endpoint did not send."""
    if isinstance(value, bool):  # a bool is an int to Python, and no lifetime
        return None
    if isinstance(value, str):
        # ASCII digits only: int() also reads other scripts' digits, spaces and underscores.
        value = int(value) if _DIGITS.fullmatch(value) else None
    elif isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, int) and 0 <= value <= MAX_REPORTED_LIFETIME_S:
        return value
    return None


def read_token_response(status: int, body: Any) -> TokenOutcome:
    fields = body if isinstance(body, dict) else {}

    def text(name: str) -> str | None:
        value = fields.get(name)
        return value[:512] if isinstance(value, str) else None

    if 200 <= status < 300 and isinstance(fields.get("access_token"), str):
        return TokenOutcome(
            ok=True,
            status=status,
            token_type=text("token_type"),
            scope=text("scope"),
            expires_in=lifetime_s(fields.get("expires_in")),
        )
    return TokenOutcome(
        ok=False,
        status=status,
        error=text("error") or "invalid_response",
        error_description=text("error_description"),
    )
