"""Development mode: with no issuer configured, the gateway trusts a signing key of its own, kept
in the data dir, and `ehr-gateway token` mints short-lived tokens with it. The gateway then
listens on loopback only, so nobody else can reach it."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from ehr_gateway.ehr.jwks import LEEWAY_S
from ehr_gateway.runtime.identity import ALL_TENANTS, StaticKeys, TokenVerifier

KEY_FILE = "auth-signing-key.json"
ISSUER = "urn:ehr-gateway:development"
AUDIENCE = "ehr-gateway"
ALGORITHM = "ES256"
DEFAULT_TTL_S = 3600


def signing_key(data_dir: Path) -> ECKey:
    """The development signing key, created (mode 0600) on first use."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ECKey.generate_key("P-256")
        key.ensure_kid()
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as key_file:
                key_file.write(json.dumps(key.as_dict(private=True)))
    return ECKey.import_key(json.loads(path.read_text()))


def verifier(data_dir: Path, leeway_s: int = LEEWAY_S) -> TokenVerifier:
    public = signing_key(data_dir).as_dict(private=False)
    keys = KeySet.import_key_set({"keys": [{**public, "alg": ALGORITHM, "use": "sig"}]})
    # The usual cause is a token minted with another data dir's key: the reason says so (it
    # names no path, which the caller has no business knowing).
    return TokenVerifier(
        ISSUER, AUDIENCE, StaticKeys(keys),
        unknown_key="the token is signed by an unknown key, not this development gateway's "
        "(ehr-gateway token --help)", leeway_s=leeway_s,
    )  # fmt: skip


def mint(
    data_dir: Path,
    *,
    tenants: Iterable[str],
    roles: Iterable[str],
    subject: str = "developer",
    ttl_s: int = DEFAULT_TTL_S,
) -> str:
    """A token for the development gateway using ``data_dir``. A tenant of "*" means all."""
    key = signing_key(data_dir)
    tenant_list = list(tenants)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
        "tenants": ALL_TENANTS if ALL_TENANTS in tenant_list else tenant_list,
        "roles": list(roles),
    }
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])
