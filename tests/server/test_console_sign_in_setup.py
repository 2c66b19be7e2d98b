"""The console page's sign-in setup: behind an issuer, the issuer, client id and scopes are
written into the page as JSON data that no value can break out of, and the page may connect to
the issuer's origin; in development mode it carries none and connects to its own origin only.

Attack: a setting (or an issuer URL) holding `</script><script>…` that would otherwise run as
script in the console, and a policy that let the page send tokens to any other host. The issuer's
origin joins connect-src, so EHRGW_AUTH_ISSUER must be an absolute https URL (http on loopback)
with a plain host: one with a space, a `;` or a wildcard would add `*`, a wildcard host or a
directive of its own (`script-src-elem *`) to the policy, and is refused at startup."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette

from ehr_gateway.server import console
from ehr_gateway.server.config import GatewayConfig, load_config

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


# Each would widen the policy: any source, a directive after the `;`, any subdomain.
POLICY_WIDENING_ISSUERS = [
    "https://issuer.example.test *",
    "https://issuer.example.test;script-src-elem *",
    "https://*.example.test",
    "https://issuer.example.test,https://evil.example.test",
    "https://issuer.example.test\t'unsafe-inline'",
]
NOT_A_PLAIN_HTTPS_URL = [
    "http://issuer.example.test",  # plain http off loopback
    "issuer.example.test",
    "https://user@issuer.example.test",
    "https://issuer.example.test/?tenant=1",
    "https://issuer.example.test:port",
]


@pytest.mark.parametrize("issuer", POLICY_WIDENING_ISSUERS + NOT_A_PLAIN_HTTPS_URL)
def test_an_issuer_that_is_not_a_plain_https_url_is_refused_naming_the_setting(
    issuer: str,
) -> None:
    with pytest.raises(ValidationError):
        GatewayConfig(auth_issuer=issuer)
    with pytest.raises(ValueError, match="invalid configuration: EHRGW_AUTH_ISSUER: "):
        load_config(auth_issuer=issuer)


@pytest.mark.parametrize(
    ("issuer", "origin"),
    [
        ("https://Login.Example.test:8443/realms/acme", "https://login.example.test:8443"),
        ("http://127.0.0.1:41234", "http://127.0.0.1:41234"),
        ("http://localhost/realms/acme", "http://localhost"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
    ],
)
async def test_the_policy_names_the_issuers_origin_written_from_its_parts(
    issuer: str, origin: str
) -> None:
    _, policy = await served(GatewayConfig(auth_issuer=issuer))

    connect = re.search(r"connect-src ([^;]+)$", policy)
    assert connect is not None, policy
    assert connect[1].split()[-1] == origin
