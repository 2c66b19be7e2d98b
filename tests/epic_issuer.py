"""A JWT issuer on loopback, as Epic is one for the JWTs it sends (pause and resume, click to
call): an OpenID discovery document and a JWK Set, whose keys can rotate, and the tokens it
signs. It counts the times its key set is served."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.servers import serve_on_loopback

# The audience the tests' tenants configure (JWT Audience) and their tokens carry.
AUDIENCE = "https://gateway.example.test/epic/cti"


@dataclass
class Issuer:
    """An OpenID issuer: discovery document and JWK Set; its keys can rotate."""

    url: str = ""
    keys: list[RSAKey] = field(default_factory=list)
    jwks_served: int = 0
    private_in_jwks: bool = False

    def rotate(self, kid: str | None = None) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": kid or f"k{len(self.keys) + 1}"})
        self.keys.append(key)
        return key

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/keys"

    def token(
        self,
        key: RSAKey,
        alg: str = "RS384",
        *,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with ``key``: iss this issuer, aud AUDIENCE, expiring in five minutes;
        ``claims`` add or replace claims (None leaves one out), ``header`` adds header members."""
        payload = {
            "iss": self.url, "aud": AUDIENCE, "sub": "epic", "exp": int(time.time()) + 300,
            **claims,
        }  # fmt: skip
        payload = {name: value for name, value in payload.items() if value is not None}
        protected = {"alg": alg, "kid": key.kid, **(header or {})}
        return jwt.encode(protected, payload, key, algorithms=[alg])

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse({"issuer": self.url, "jwks_uri": self.jwks_url})

        async def keys(request: Request) -> Response:
            self.jwks_served += 1
            served = [key.as_dict(private=self.private_in_jwks) for key in self.keys]
            return JSONResponse({"keys": served})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/keys", keys),
                # An open redirect, as many hosts have one: anyone picks where it leads.
                Route("/go", lambda r: RedirectResponse(r.query_params["to"], status_code=302)),
                Route("/plain/.well-known/jwks.json", keys),
                Route("/html/.well-known/openid-configuration", lambda r: HTMLResponse("<p>")),
                Route("/empty/.well-known/jwks.json", lambda r: JSONResponse({"keys": []})),
            ]
        )


@asynccontextmanager
async def serve_issuer(first_kid: str | None = None) -> AsyncIterator[Issuer]:
    """An issuer with one key, served on loopback."""
    issuer = Issuer()
    issuer.rotate(first_kid)
    async with serve_on_loopback(issuer.app()) as url:
        issuer.url = url
        yield issuer
