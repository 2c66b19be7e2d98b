"""Attack on the console's OpenID sign-in (server/console.py): the issuer's origin joins the
page's Content-Security-Policy connect-src, as ``urlsplit(issuer)``'s scheme and netloc, and
EHRGW_AUTH_ISSUER is taken as any text. An issuer with a space, a ``;`` or a wildcard in its
host part starts a gateway whose console policy lets the page connect anywhere (``*``,
``https://*.example.test``) or carries a directive of the issuer's text (``script-src-elem *``,
which overrides script-src for script elements): the policy that keeps an injected script from
sending the in-memory token elsewhere no longer does. The one configuration value that holds an
origin should be an absolute https URL (http on loopback for tests) with a plain host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from ehr_gateway.server.config import GatewayConfig
from tests.conftest import Gateway, gateway_config, open_gateway

ODD_ISSUERS = [
    "https://issuer.example.test *",
    "https://issuer.example.test;script-src-elem *",
    "https://*.example.test",
]


@pytest.mark.parametrize("issuer", ODD_ISSUERS)
def test_an_issuer_that_is_not_a_plain_url_is_refused(tmp_path: Path, issuer: str) -> None:
    with pytest.raises(ValidationError):
        GatewayConfig(data_dir=tmp_path, auth_issuer=issuer)


@pytest.fixture(params=ODD_ISSUERS)
async def behind_odd_issuer(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for gateway in open_gateway(
        gateway_config(database_url, tmp_path, auth_issuer=request.param)
    ):
        yield gateway


async def test_the_console_policy_names_no_source_but_the_issuers_origin(
    behind_odd_issuer: Gateway,
) -> None:
    response = await behind_odd_issuer.client.get("/console/")

    policy = response.headers["content-security-policy"]
    directives = [directive.strip() for directive in policy.split(";")]
    assert directives[-1].startswith("connect-src "), policy
    sources = directives[-1].split()[1:]
    assert "*" not in sources and not any("*" in source for source in sources), policy
