"""Where the gateway's outbound calls may go. A URL is checked by one parser when it is saved and
called by another; a host the two read differently (octal, hex or short IPv4, an empty user part,
a host that fails IDNA or that IDNA 2003 reads as another name) is refused when saved. A URL
that still cannot be called (stored before that check, or named by a remote server) is a typed
failure, never an internal error. IPv6 addresses that lead to an IPv4 address (IPv4-compatible,
IPv4-translated, NAT64, 6to4, Teredo, ISATAP) are judged by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import (
    CREATE_EXTERNAL_GATEWAY,
    GENERATE_SIGNING_KEY,
    SELECT_PROVIDER,
    UPDATE_EHR,
    UPDATE_OAUTH,
)
from tests.older_gateway import store_as_older_gateway
from tests.servers import serve_on_loopback

TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest { url reachable ok failure { code message } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
DISCOVER = """
mutation Discover($tenantId: ID!, $issuerUrl: String) {
  discoverJku(tenantId: $tenantId, issuerUrl: $issuerUrl) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
TEST_TOKEN = """
mutation TestToken($tenantId: ID!) {
  testOAuthToken(tenantId: $tenantId) {
    __typename
    ... on OAuthTokenTest { ok error errorDescription }
  }
}
"""
EXTERNAL_GATEWAY = """
query Gateway($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version externalGateway { baseUrl } }
}
"""

AMBIGUOUS_MESSAGE = (
    "the host must be a plain name or a canonical IP address that every parser reads alike"
)

# Hosts that URL parsers read differently: WHATWG parsers (browsers, many proxies) read the
# numeric ones as 127.0.0.1; urllib reads them as names; httpx refuses some and resolves others.
AMBIGUOUS_HOSTS = [
    pytest.param("http://0177.0.0.1:18313/api", id="octal"),
    pytest.param("http://0x7f.1/api", id="hex-short"),
    pytest.param("http://2130706433/api", id="one-number"),
    pytest.param("http://127.1/api", id="two-parts"),
    pytest.param("http://127.0.0.1./api", id="trailing-dot-ipv4"),
    pytest.param("http://10.0.0.0x1/api", id="hex-last-part"),
    pytest.param("https://@fhir.hospital.example/api", id="empty-userinfo"),
    pytest.param("https://xn--zz.hospital.example/api", id="bad-a-label"),
    pytest.param("https://\uff25\uff38.hospital.example/api", id="fullwidth-fails-idna"),
    pytest.param("https://fhir..hospital.example/api", id="empty-label"),
    pytest.param("https://fhir%2ehospital.example/api", id="percent-encoded"),
    pytest.param("https://[fe80::1%25eth0]/api", id="ipv6-zone"),
    pytest.param("https://fhir{1}.hospital.example/api", id="escaped-differently"),
    # IDNA 2008 (the check, httpx) reads xn--strae-oqa; IDNA 2003 (urllib, Java's IDN) reads
    # fhir.strasse.example, another domain, which would get the EHR's credentials.
    pytest.param("https://fhir.stra\u00dfe.example/api", id="idna-deviation-sharp-s"),
    pytest.param("https://fhir.\u03c2igma.example/api", id="idna-deviation-final-sigma"),
]


async def _connection(gateway: Gateway, tenant_id: str, base_url: str) -> dict[str, Any]:
    data = await gateway.execute(
        CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id,
        connection={"name": "EHR", "baseUrl": base_url, "environment": "NON_PRODUCTION"},
    )  # fmt: skip
    result: dict[str, Any] = data["createExternalGateway"]
    return result


@pytest.fixture
async def local_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway allowed to call loopback over plain http, as in local testing: the host check
    must hold even there."""
    config = gateway_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True,
        outbound_timeout_s=2.0,
    )  # fmt: skip
    async for gateway in open_gateway(config):
        yield gateway


@pytest.mark.parametrize("base_url", AMBIGUOUS_HOSTS)
async def test_a_host_parsers_read_differently_is_refused_when_saved(
    local_gateway: Gateway, tenant_id: str, base_url: str
) -> None:
    await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    result = await _connection(local_gateway, tenant_id, base_url)

    assert result["__typename"] == "ValidationFailed"
    assert [(e["path"], e["code"]) for e in result["errors"]] == [
        (["connection", "baseUrl"], "AMBIGUOUS_HOST")
    ]
    assert base_url not in str(result)  # the value is not echoed
    stored = await local_gateway.execute(EXTERNAL_GATEWAY, tenantId=tenant_id)
    assert stored["integrationSettings"] == {"version": 1, "externalGateway": None}


async def test_every_url_setting_refuses_an_ambiguous_host(
    local_gateway: Gateway, tenant_id: str
) -> None:
    await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    oauth = await local_gateway.execute(
        UPDATE_OAUTH, tenantId=tenant_id,
        input={"epic": {"oauthTokenUrl": "http://0177.0.0.1:18313/oauth2/token"}},
    )  # fmt: skip
    ehr = await local_gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input={"epic": {"jkuServerUrl": "http://127.1/jwks"}}
    )

    await local_gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input={"epic": {"enableDefaultJkuServerUrlPattern": True}}
    )
    issuer = await local_gateway.execute(
        DISCOVER, tenantId=tenant_id, issuerUrl="http://0x7f.1:18313/issuer"
    )

    assert oauth["updateOAuthSettings"]["errors"][0]["code"] == "AMBIGUOUS_HOST"
    assert ehr["updateEhrSettings"]["errors"][0]["code"] == "AMBIGUOUS_HOST"
    assert issuer["discoverJku"]["errors"] == [
        {"path": ["issuerUrl"], "code": "AMBIGUOUS_HOST", "message": AMBIGUOUS_MESSAGE}
    ]


async def test_ordinary_hosts_are_still_accepted(local_gateway: Gateway, tenant_id: str) -> None:
    await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    for base_url in (
        "https://fhir.hospital.example/api",
        "https://b\u00fccher.hospital.example/api",
        "http://127.0.0.1:18313/api",
        "https://[2001:db8::1]:8443/api",
        "https://fhir.hospital.example./api",
    ):
        assert (await _connection(local_gateway, tenant_id, base_url))["__typename"] == (
            "SettingsSaved"
        ), base_url


def _redirect_to(location: str) -> Any:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(location, status_code=302)

    return redirect


async def _discovery_naming(request: Request) -> Response:
    return JSONResponse({"issuer": "x", "jwks_uri": "http://0177.0.0.1:18313/keys"})


# A server that names URLs httpx cannot read: in a redirect, and as a discovery's jwks_uri.
ODD_SERVER = Starlette(
    routes=[
        Route("/punycode/metadata", _redirect_to("http://xn--zz.hospital.example/metadata")),
        Route("/octal/metadata", _redirect_to("http://0177.0.0.1:18313/metadata")),
        Route("/issuer/.well-known/openid-configuration", _discovery_naming),
    ]
)


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    async with serve_on_loopback(ODD_SERVER) as url:
        yield url


@pytest.mark.parametrize("path", ["punycode", "octal"])
async def test_a_redirect_to_a_url_that_cannot_be_called_is_a_typed_failure(
    local_gateway: Gateway, tenant_id: str, odd_server: str, path: str
) -> None:
    await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    assert (await _connection(local_gateway, tenant_id, f"{odd_server}/{path}"))[
        "__typename"
    ] == "SettingsSaved"

    body = await local_gateway.post(TEST_CONNECTION, tenantId=tenant_id)

    assert "errors" not in body, body  # was INTERNAL_SERVER_ERROR (idna.IDNAError)
    result = body["data"]["testExternalGatewayConnection"]
    assert result["ok"] is False
    assert result["failure"]["code"] in {"INVALID_URL", "HTTP_ERROR"}
    if path == "punycode":
        assert result["failure"]["code"] == "INVALID_URL"


async def test_a_discovered_key_set_url_that_cannot_be_called_is_a_typed_failure(
    local_gateway: Gateway, tenant_id: str, odd_server: str
) -> None:
    await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await local_gateway.execute(
        UPDATE_EHR, tenantId=tenant_id, input={"epic": {"enableDefaultJkuServerUrlPattern": True}}
    )

    body = await local_gateway.post(DISCOVER, tenantId=tenant_id, issuerUrl=f"{odd_server}/issuer")

    assert "errors" not in body, body  # was INTERNAL_SERVER_ERROR (httpx.InvalidURL)
    assert body["data"]["discoverJku"]["errors"][0]["code"] == "INVALID_URL"


async def test_urls_stored_before_hosts_were_checked_fail_typed_not_internally(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """The issue's own case: base and token URLs with an octal host, saved by an older version,
    then tested: each test answers INVALID_URL, and the tenant stays readable."""
    config = gateway_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True
    )
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
        await _connection(gateway, tenant_id, "http://127.0.0.1:18313/api")
        await gateway.execute(
            UPDATE_OAUTH, tenantId=tenant_id,
            input={"epic": {"epicClientId": "client",
                            "oauthTokenUrl": "http://127.0.0.1:18313/oauth2/token"}},
        )  # fmt: skip
        await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)
    await store_as_older_gateway(
        database_url,
        TEST_DATABASE,
        tenant_id,
        {
            "providers.EPIC.externalGateway.baseUrl": "http://0177.0.0.1:18313/api",
            "providers.EPIC.oauth.oauthTokenUrl": "http://0177.0.0.1:18313/oauth2/token",
        },
        data_dir=tmp_path,
    )

    async for gateway in open_gateway(config):  # a fresh process: nothing cached
        stored = await gateway.execute(EXTERNAL_GATEWAY, tenantId=tenant_id)
        connection = await gateway.post(TEST_CONNECTION, tenantId=tenant_id)
        token = await gateway.post(TEST_TOKEN, tenantId=tenant_id)

        assert stored["integrationSettings"]["externalGateway"]["baseUrl"].startswith("http://0177")
        assert "errors" not in connection, connection
        assert connection["data"]["testExternalGatewayConnection"]["failure"]["code"] == (
            "INVALID_URL"
        )
        assert "errors" not in token, token
        assert token["data"]["testOAuthToken"] == {
            "__typename": "OAuthTokenTest", "ok": False, "error": "INVALID_URL",
            "errorDescription": "the URL cannot be called",
        }  # fmt: skip


# IPv6 addresses whose packets reach 127.0.0.1 (or another non-public IPv4 address).
EMBEDDED_IPV4 = [
    pytest.param("[::127.0.0.1]", id="ipv4-compatible"),
    pytest.param("[64:ff9b::127.0.0.1]", id="nat64"),
    pytest.param("[64:ff9b:1::a00:1]", id="local-use-nat64"),
    pytest.param("[2002:7f00:1::]", id="6to4"),
    pytest.param("[2001:0:7f00:1::80ff:fffe]", id="teredo"),
    pytest.param("[::ffff:127.0.0.1]", id="ipv4-mapped"),
    pytest.param("[::ffff:0:7f00:1]", id="ipv4-translated"),  # RFC 2765 SIIT ::ffff:0:127.0.0.1
    pytest.param("[::ffff:0:a00:1]", id="ipv4-translated-10"),
    pytest.param("[2600::5efe:a00:1]", id="isatap"),  # RFC 5214: any /64, then 0:5efe:10.0.0.1
    pytest.param("[2600::200:5efe:7f00:1]", id="isatap-u-bit"),
]


@pytest.mark.parametrize("host", EMBEDDED_IPV4)
async def test_ipv6_leading_to_a_private_ipv4_address_is_refused(
    gateway: Gateway, tenant_id: str, host: str
) -> None:
    """The production policy (https only, no private addresses): these were UNREACHABLE (a
    connection was attempted), now PRIVATE_ADDRESS (none is)."""
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    assert (await _connection(gateway, tenant_id, f"https://{host}:18313/api"))[
        "__typename"
    ] == "SettingsSaved"

    result = (await gateway.execute(TEST_CONNECTION, tenantId=tenant_id))[
        "testExternalGatewayConnection"
    ]

    assert result["reachable"] is False
    assert result["failure"]["code"] == "PRIVATE_ADDRESS"


# Addresses Python's ipaddress calls global that no EHR is at: the deprecated site-local fec0::/10
# (IPv6's first RFC 1918, still routed inside some networks) and multicast, where no TCP server
# listens, also in IPv4-mapped form.
GLOBAL_TO_THE_STDLIB = [
    pytest.param("[fec0::1]", id="site-local"),
    pytest.param("[fec0::5efe:808:808]", id="site-local-isatap-to-public"),
    pytest.param("[ff0e::1]", id="ipv6-multicast"),
    pytest.param("224.0.0.1", id="ipv4-multicast"),
    pytest.param("[::ffff:239.1.2.3]", id="ipv4-mapped-multicast"),
]


@pytest.mark.parametrize("host", GLOBAL_TO_THE_STDLIB)
async def test_addresses_the_stdlib_calls_global_but_are_not_public_are_refused(
    gateway: Gateway, tenant_id: str, host: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    assert (await _connection(gateway, tenant_id, f"https://{host}:18313/api"))[
        "__typename"
    ] == "SettingsSaved"

    result = (await gateway.execute(TEST_CONNECTION, tenantId=tenant_id))[
        "testExternalGatewayConnection"
    ]

    assert result["reachable"] is False
    assert result["failure"]["code"] == "PRIVATE_ADDRESS"
