"""The console page's sign-in setup: behind an issuer, the issuer, client id and scopes are
written into the page as JSON data that no value can break out of, and the page may connect to
the issuer's origin; in development mode it carries none and connects to its own origin only.

Attack: a setting (or an issuer URL) holding `</script><script>…` that would otherwise run as
script in the console, and a policy that let the page send tokens to any other host."""

from __future__ import annotations

import json
import re

import httpx
from starlette.applications import Starlette

from ehr_gateway.server import console
from ehr_gateway.server.config import GatewayConfig

HOSTILE = "</script><script>alert(1)</script>"


async def served(config: GatewayConfig) -> tuple[str, str]:
    """The console page of a gateway with ``config``, and its Content-Security-Policy."""
    transport = httpx.ASGITransport(app=Starlette(routes=console.routes(config)))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/console/")
    return response.text, response.headers["content-security-policy"]


def setup_of(page: str) -> object:
    found = re.search(r'<script type="application/json" id="sign-in-setup">(.*?)</script>', page)
    assert found is not None
    return json.loads(found[1])


async def test_behind_an_issuer_the_page_names_it_and_may_reach_it() -> None:
    config = GatewayConfig(
        auth_issuer="https://login.example.test/realms/acme",
        console_client_id=HOSTILE,
        console_scopes="openid offline_access",
    )
    page, policy = await served(config)
    assert page.count("<script") == 3  # the setup, the import map, main.js: nothing injected
    assert setup_of(page) == {
        "issuer": "https://login.example.test/realms/acme",
        "clientId": HOSTILE,
        "scopes": "openid offline_access",
    }
    connect = re.search(r"connect-src ([^;]+)", policy)
    assert connect is not None
    assert connect[1].split()[-1] == "https://login.example.test"
    assert "form-action 'none'" in policy


async def test_in_development_mode_the_page_has_no_issuer() -> None:
    page, policy = await served(GatewayConfig())
    assert setup_of(page) == {}
    connect = re.search(r"connect-src ([^;]+)", policy)
    assert connect is not None
    assert all(source == "'self'" or "gateway" in source for source in connect[1].split())
