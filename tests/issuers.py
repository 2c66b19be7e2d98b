"""A sign-in issuer on loopback, as the gateway trusts one for its callers' tokens (auth_issuer):
an OpenID discovery document naming a JWK Set of one RS256 key, and the tokens that key signs.
A test that needs the issuer to misbehave subclasses it and answers ``discovery`` or ``key_set``
its own way."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.processes import ALL_ROLES
from tests.servers import serve_on_loopback

DISCOVERY_PATH = "/.well-known/openid-configuration"
KEY_SET_PATH = "/jwks.json"


def new_key(kid: str = "issuer-key-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@dataclass
class SignInIssuer:
    """An OpenID issuer: discovery document, JWK Set, and the tokens it signs."""

    key: RSAKey = field(default_factory=new_key)
    url: str = ""
    audience: str = "ehr-gateway"

    def issue(
        self,
        sub: str,
        tenants: Sequence[str] | str,
        roles: Sequence[str],
        exp_in: int = 300,
        *,
        key: RSAKey | None = None,
        **claims: Any,
    ) -> str:
        """A signed token for ``sub`` on ``tenants`` ("*": all) with ``roles``, expiring in
        ``exp_in`` seconds (negative: already expired). ``claims`` add or replace claims."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.url,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + exp_in,
            "tenants": tenants if isinstance(tenants, str) else list(tenants),
            "roles": list(roles),
            **claims,
        }
        signer = key or self.key
        header = {"alg": "RS256", "kid": signer.kid, "typ": "JWT"}
        return jwt.encode(header, payload, signer, algorithms=["RS256"])

    def staff(self, roles: Sequence[str] = ALL_ROLES) -> str:
        """A token for staff on every tenant."""
        return self.issue("staff", "*", roles)

    def public_key_set(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "alg": "RS256", "use": "sig"}]}

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}{KEY_SET_PATH}"})

    async def key_set(self, request: Request) -> Response:
        return JSONResponse(self.public_key_set())

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route(DISCOVERY_PATH, self.discovery), Route(KEY_SET_PATH, self.key_set)]
        )


Served = TypeVar("Served", bound=SignInIssuer)


@asynccontextmanager
async def serve_issuer(issuer: Served) -> AsyncIterator[Served]:
    """``issuer`` served on loopback, its ``url`` set to where."""
    async with serve_on_loopback(issuer.app()) as url:
        issuer.url = url
        yield issuer
