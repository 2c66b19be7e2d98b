"""Custom headers are added to every request to the EHR's API, and an editor (the account admin)
may change them. So a custom header may not be one the HTTP client or the connection owns (Host
picks the EHR's virtual host; Content-Length and Transfer-Encoding frame the request, and a second
one smuggles a request past the EHR's front end) nor a credential (it would replace the one the
runtime sends, and every viewer, export and history entry shows it as plain text). A value is what
HTTP can carry: printable ASCII, or the HTTP client refuses every call to the EHR. Nor may it be
one a front end reads as the request's real target, method, client or user (X-Original-URL,
X-Forwarded-*, Forwarded, host and method overrides, a CDN's client address, X-Remote-User, the
client certificate a TLS front end verified, by name or by the shape vendors name them), which
would re-route the call as Host does, nor Proxy (httpoxy), nor one proxies on the way read (Via,
Max-Forwards, CDN-Loop, Early-Data), nor one that shapes the EHR's answer or a cache's (Range,
Request-Range, If-*, Accept, Accept-Encoding, Cache-Control, Pragma); names are compared as
CGI-style servers read them, with _ as -, for what is reserved and for uniqueness alike. Headers
saved before these rules still read back, so the tenant stays readable and the header can be
removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import SELECT_PROVIDER_BY_NAME
from tests.older_gateway import store_as_older_gateway

SAVE_HEADERS = """
mutation SaveHeaders($tenantId: ID!, $input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
HEADERS = """
query Headers($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    headers {
      ... on GenericHeaderSettings { customHeaders { name value } }
      ... on EpicHeaderSettings { epicClientId }
    }
  }
}
"""


async def save_header(
    gateway: Gateway, tenant_id: str, name: str, value: str, provider: str = "ATHENA"
) -> dict[str, Any]:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    await editor.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider=provider)
    block = {"customHeaders": [{"name": name, "value": value}]}
    data = await editor.execute(SAVE_HEADERS, tenantId=tenant_id, input={provider.lower(): block})
    result: dict[str, Any] = data["updateHeaderSettings"]
    return result


async def headers(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    data = await gateway.execute(HEADERS, tenantId=tenant_id)
    block: dict[str, Any] = data["integrationSettings"]["headers"]
    return block


async def assert_refused_as_reserved(
    gateway: Gateway, tenant_id: str, result: dict[str, Any]
) -> None:
    """The save answered ``result``: the header's name refused as reserved, and none saved."""
    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "customHeaders", "0", "name"], "RESERVED_HEADER")
    ]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


@pytest.mark.parametrize(
    "name",
    ["Host", "Content-Length", "transfer-encoding", "Connection", "TE", "Trailer", "Upgrade",
     "Keep-Alive", "Expect", "Proxy-Connection", "Proxy-Authenticate", "Content-Range", "Via",
     "Max-Forwards", "HTTP2-Settings",
     # RFC 8586: a CDN finding its own name in CDN-Loop refuses the call as a loop; RFC 8470:
     # Early-Data: 1 says the call came in TLS early data, which the EHR may answer 425.
     "CDN-Loop", "Early-Data",
     # A CGI-style server hands it to the EHR as HTTP_PROXY, its HTTP client's outbound proxy
     # ("httpoxy", CVE-2016-5385): the EHR's own calls would go through the editor's host.
     "Proxy"],
)  # fmt: skip
async def test_a_hop_by_hop_framing_or_routing_header_is_refused(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "0")

    await assert_refused_as_reserved(gateway, tenant_id, result)


# Front ends (IIS URL Rewrite, reverse proxies, frameworks) read these as the request's real
# target, host, client or method: each re-routes a call to the EHR as surely as Host.
ROUTING = [
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Forwarded-Host",
    "Forwarded",
    "X-Forwarded-For",
    "X-HTTP-Method-Override",
    "X-Method-Override",
    "x-forwarded-prefix",
    "X-Real-IP",
    "Content-Type",
    # Host overrides beside X-Host and X-Forwarded-Server (PortSwigger's list of them).
    "X-HTTP-Host-Override",
    "X-Host-Override",
]


@pytest.mark.parametrize("name", ROUTING)
async def test_an_editor_cannot_save_a_routing_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    saved = await save_header(gateway, tenant_id, name, "/api/FHIR/R4/Patient/other")

    assert saved["__typename"] == "ValidationFailed", saved
    assert [error["code"] for error in saved["errors"]] == ["RESERVED_HEADER"]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


# The client address under CDN and load-balancer vendors' names (Cloudflare, Fastly, Rackspace and
# Riverbed, Google Cloud): an EHR behind one of them would take every runtime call as coming from
# the address the editor chose.
# The rest are reserved by the shape vendors name them (*-Client-IP*, *Connecting-IP*): Azure
# Front Door, Fly.io, Imperva, Cloudflare's IPv6 one; and by the other shapes of a client address
# (Client-IP, read first by many PHP frameworks; Microsoft's X-Originating-IP; X-Remote-Addr;
# App Engine's X-Appengine-User-Ip) or of the user a front end signed in (X-Remote-User). Beside
# them, the original target or scheme under other front ends' names (nginx's auth_request, Envoy,
# Tornado's X-Scheme). Client-address libraries (npm's request-ip, PHP's snippets) also read
# Forwarded-For (as HTTP_FORWARDED_FOR, so Forwarded_For too), X-Coming-From and Coming-From, and
# Cloudflare's Pseudo IPv4 header; nginx ingress passes the chain on as X-Original-Forwarded-For.
CLIENT_ADDRESS = [
    "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP", "X-ProxyUser-Ip",
    "X-Azure-ClientIP", "X-Azure-SocketIP", "Fly-Client-IP", "Incap-Client-IP",
    "CF-Connecting-IPv6", "X-Original-URI", "X-Envoy-Original-Path", "X-Envoy-External-Address",
    "X-Scheme", "X-Url-Scheme", "Front-End-Https", "Client-IP", "X-Originating-IP",
    "X-Remote-IP", "X-Remote-Addr", "Remote-Addr", "X-Appengine-User-Ip", "X-Remote-User",
    "Remote-User", "Forwarded-For", "Forwarded_For", "Forwarded-Host", "X-Original-Forwarded-For",
    "X-Real-Forwarded-For", "X-Coming-From", "Coming-From", "Cf-Pseudo-IPv4", "Cf-Pseudo-IPv6",
    # AWS CloudFront (the viewer's address and port), Sucuri, Netlify, Alibaba Cloud CDN.
    "CloudFront-Viewer-Address", "X-Sucuri-ClientIP", "X-NF-Client-Connection-IP",
    "Ali-CDN-Real-IP",
]  # fmt: skip


@pytest.mark.parametrize("name", CLIENT_ADDRESS)
async def test_an_editor_cannot_save_a_front_ends_client_address_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "10.0.0.1")

    await assert_refused_as_reserved(gateway, tenant_id, result)


# Headers an SSO or TLS-terminating front end sets as the user or client certificate it
# authenticated, which the application behind it trusts as the caller's identity: the same class
# as X-Remote-User, spelt the way other front ends spell it (oauth2-proxy, Azure App Service,
# Google IAP, AWS ALB, Cloudflare Access, Kong, Kubernetes' front proxy, auth proxies,
# nginx/IIS client certificates). Keycloak Gatekeeper adds every claim it is told to as
# X-Auth-<Claim>, and mod_auth_openidc passes the user info, the tokens and the claims as OIDC_*.
# An editor who could save one would impersonate anyone to the EHR's API.
FRONT_END_IDENTITY = [
    "X-Auth-Request-User", "X-Auth-Request-Email", "X-Authenticated-User",
    "X-MS-CLIENT-PRINCIPAL-NAME", "X-MS-CLIENT-PRINCIPAL", "X-MS-TOKEN-AAD-ID-TOKEN",
    "X-Goog-Authenticated-User-Email", "X-Goog-IAP-JWT-Assertion", "X-Amzn-Oidc-Identity",
    "X-Amzn-Oidc-Data", "Cf-Access-Authenticated-User-Email", "X-Userinfo", "X-Remote-Group",
    "X-WEBAUTH-USER", "Shib-Identity-Provider", "X-SSL-Client-Cert", "X-Client-Cert",
    "X-ARR-ClientCert", "SSL-Client-Verify", "X-SSL-Client-S-DN", "X_Auth_Request_User",
    "X-Auth-Given-Name", "X-Auth-Preferred-Username", "X-Auth-Email", "X-Auth-ExpiresIn",
    "OIDC_userinfo_json", "OIDC_userinfo_jwt", "OIDC_id_token", "OIDC_id_token_payload",
    "OIDC_access_token", "OIDC-Refresh-Token",
    # Cloudflare's mTLS ("Add TLS client auth headers"): the client certificate it verified.
    "Cf-Cert-Verified", "Cf-Cert-Presented", "Cf-Cert-Subject-DN",
]  # fmt: skip


@pytest.mark.parametrize("name", FRONT_END_IDENTITY)
async def test_an_editor_cannot_save_a_front_ends_authenticated_identity_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "admin@hospital.example")

    await assert_refused_as_reserved(gateway, tenant_id, result)


# Request headers that decide how the EHR frames or encodes its answer, or whether it sends one,
# reserved as Content-Type and Content-Encoding are: Range gets a 206 with part of a FHIR resource,
# If-None-Match and If-Modified-Since a 304 with no body, Accept-Encoding a coding the runtime may
# not decode. Request-Range is Range's older spelling, which some servers still honour; Prefer
# (return=minimal, respond-async) asks for an answer without the resource, or for none yet.
# Accept: application/fhir+xml gets XML the runtime, reading JSON, cannot use (Accept-Charset an
# encoding it may not decode). Caches between the runtime and the EHR read Cache-Control and
# Pragma: only-if-cached answers 504 without asking the EHR, max-stale serves old records.
ANSWER_SHAPING = [
    "Range", "If-Range", "If-None-Match", "If-Modified-Since", "Accept-Encoding", "Request-Range",
    "Prefer", "Accept", "Accept-Charset", "Cache-Control", "Pragma",
]  # fmt: skip


@pytest.mark.parametrize("name", ANSWER_SHAPING)
async def test_an_editor_cannot_save_a_header_that_shapes_the_ehrs_answer(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "bytes=0-99")

    await assert_refused_as_reserved(gateway, tenant_id, result)


async def test_two_spellings_of_one_header_are_not_both_saved(
    gateway: Gateway, tenant_id: str
) -> None:
    # X-Api-Key and X_Api_Key reach a CGI-style server as one HTTP_X_API_KEY: which value the
    # EHR saw would depend on its server, and one editor could shadow another's header.
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    await editor.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    block = {
        "customHeaders": [
            {"name": "X-Api-Key", "value": "practice-7"},
            {"name": "X_Api_Key", "value": "practice-9"},
        ]
    }

    data = await editor.execute(SAVE_HEADERS, tenantId=tenant_id, input={"athena": block})

    result = data["updateHeaderSettings"]
    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["DUPLICATE_NAME"], result
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


# CGI-style servers (PHP-FPM, WSGI, Gunicorn before 22) hand both spellings to the EHR's
# application as the same HTTP_X_FORWARDED_FOR.
@pytest.mark.parametrize(
    "name",
    [
        # Kong sets these after authenticating a consumer; upstreams read them as the caller.
        "X-Consumer-Username", "X-Consumer-ID", "X-Credential-Identifier",
        # Next.js: skips middleware, where such apps check authentication (CVE-2025-29927).
        "X-Middleware-Subrequest",
        # Azure App Service's front end: the request's original host and URL.
        "Disguised-Host", "X-Waws-Unencoded-Url", "X-Ms-Original-Url",
        # IIS / Microsoft and others: URL rewrite targets, like X-Original-URL.
        "X-HTTP-DestinationURL", "X-Override-URL",
        # The non-standard spelling of Forwarded, and TLS flags like Front-End-Https.
        "X-Forwarded", "X-Arr-Ssl", "X-Https",
        # authentik, Keycloak Gatekeeper, Vouch, Tailscale and mod_auth_openidc: the signed-in
        # user, their id, roles and groups, and the ID token's claims.
        "X-Authentik-Username", "X-Authentik-Groups", "X-Auth-Username", "X-Auth-Userid",
        "X-Auth-Roles", "X-Vouch-User", "Tailscale-User-Login", "OIDC_CLAIM_sub",
        # Rack::Sendfile and nginx: internal redirects to any path nginx serves.
        "X-Sendfile-Type", "X-Accel-Mapping",
    ],
)  # fmt: skip
async def test_an_editor_cannot_save_a_front_ends_header_under_another_vendors_name(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """Front ends of other vendors read these as the authenticated caller or the request's
    real target (a security tester found each saved): refused like the names above."""
    result = await save_header(gateway, tenant_id, name, "x")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"], result


UNDERSCORE_SPELLINGS = [
    "X_Forwarded_For",
    "X-Forwarded_Host",
    "X_Real_IP",
    "X-HTTP_Method_Override",
    "X_Original_URL",
    "Transfer_Encoding",
    "Content_Length",
    "Proxy_Authorization",
]


@pytest.mark.parametrize("name", UNDERSCORE_SPELLINGS)
async def test_a_reserved_header_spelt_with_underscores_is_refused(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "203.0.113.7")

    await assert_refused_as_reserved(gateway, tenant_id, result)


async def test_an_ordinary_header_with_underscores_is_saved(
    gateway: Gateway, tenant_id: str
) -> None:
    result = await save_header(gateway, tenant_id, "X_Request_Source", "gateway")

    assert result["__typename"] == "SettingsSaved", result
    assert (await headers(gateway, tenant_id))["customHeaders"] == [
        {"name": "X_Request_Source", "value": "gateway"}
    ]


# X-Serverless-Authorization: Cloud Run and Cloud Functions check the identity token in it in
# place of Authorization's.
@pytest.mark.parametrize(
    "name", ["Authorization", "Proxy-Authorization", "Cookie", "X-Serverless-Authorization"]
)
async def test_a_credential_header_is_refused_saying_why(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "Bearer planted-token", "CERNER")

    assert result["__typename"] == "ValidationFailed", result
    [error] = result["errors"]
    assert (error["path"], error["code"]) == (
        ["input", "cerner", "customHeaders", "0", "name"],
        "RESERVED_HEADER",
    )
    assert "credentials" in error["message"]
    assert "planted-token" not in str(result)


@pytest.mark.parametrize(
    "value",
    ["a\x01b", "a\x1bb", "a\x7fb", "a\x0bb", "\u20ac", "x\u2028y", "caf\u00e9"],
    ids=["SOH", "ESC", "DEL", "VT", "euro", "line-separator", "latin-1"],
)
async def test_a_value_http_cannot_carry_is_refused(
    gateway: Gateway, tenant_id: str, value: str
) -> None:
    result = await save_header(gateway, tenant_id, "X-Site", value, "ELLKAY")

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "ellkay", "customHeaders", "0", "value"], "INVALID_HEADER_VALUE")
    ]


async def test_an_epic_header_value_is_printable_ascii(gateway: Gateway, tenant_id: str) -> None:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    await editor.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")

    data = await editor.execute(
        SAVE_HEADERS, tenantId=tenant_id, input={"epic": {"epicClientId": "client\x1b[2J"}}
    )

    result = data["updateHeaderSettings"]
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "epic", "epicClientId"], "INVALID_HEADER_VALUE")
    ]


async def test_an_ordinary_header_with_spaces_and_tabs_inside_is_saved(
    gateway: Gateway, tenant_id: str
) -> None:
    result = await save_header(gateway, tenant_id, "X-Practice", "  195900 \tsite=7;q=1  ")

    assert result["__typename"] == "SettingsSaved", result
    assert (await headers(gateway, tenant_id))["customHeaders"] == [
        {"name": "X-Practice", "value": "195900 \tsite=7;q=1"}
    ]


async def test_headers_saved_under_the_earlier_rules_stay_readable(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    old = [
        {"name": "Authorization", "value": "Basic c3ZjOnB3"},
        {"name": "X-Site", "value": "\u20ac"},
        {"name": "Range", "value": "bytes=0-99"},
        {"name": "Accept", "value": "application/fhir+xml"},
        {"name": "X-HTTP-Host-Override", "value": "internal-admin.example"},
        {"name": "Cf-Cert-Verified", "value": "SUCCESS"},
        {"name": "X-Api-Key", "value": "practice-7"},
        {"name": "X_Api_Key", "value": "practice-9"},
    ]
    await store_as_older_gateway(
        database_url,
        TEST_DATABASE,
        tenant_id,
        {"providers.ATHENA.headers.customHeaders": old},
        data_dir=tmp_path,
    )

    async for gateway in open_gateway(config):  # a fresh process: nothing cached
        assert (await headers(gateway, tenant_id))["customHeaders"] == old
        result = await gateway.execute(
            SAVE_HEADERS, tenantId=tenant_id, input={"athena": {"customHeaders": []}}
        )
        assert result["updateHeaderSettings"]["__typename"] == "SettingsSaved", result


async def test_x_auth_token_stays_free_for_services_that_take_an_api_key_in_it(
    gateway: Gateway, tenant_id: str
) -> None:
    """Keycloak Gatekeeper's X-Auth-* identity headers are reserved, all but X-Auth-Token: some
    services take their API key in it."""
    result = await save_header(gateway, tenant_id, "X-Auth-Token", "an-api-key")

    assert result["__typename"] == "SettingsSaved", result


# Names API gateways and EHR vendors use for their own headers, beside the reserved shapes they
# resemble: a key, a client id, a language, a request id.
OWN_HEADERS = [
    "Accept-Language", "X-Client-Id", "X-IBM-Client-Id", "X-Client-Name", "X-Request-Id",
    "X-Host-Name", "X-Viewer-Id", "CF-Ray-Id", "X-Real-Time",
]  # fmt: skip


@pytest.mark.parametrize("name", OWN_HEADERS)
async def test_headers_that_only_resemble_reserved_ones_are_saved(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "practice-7")

    assert result["__typename"] == "SettingsSaved", result
    assert (await headers(gateway, tenant_id))["customHeaders"] == [
        {"name": name, "value": "practice-7"}
    ]
