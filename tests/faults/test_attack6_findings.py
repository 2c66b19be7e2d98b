"""Holes found by a security review of the gateway, each shown by a test that fails while the
hole is open. Each test's description names the attack and the README claim it breaks."""

from __future__ import annotations

from typing import Any

import idna
import isodate
import pytest

from tests.conftest import Gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_PROVIDER
from tests.gql.test_cache_durations import athena_tenant, save, ttls
from tests.gql.test_custom_headers import headers, save_header

# PortSwigger's list of host override headers (Web Security Academy, "HTTP Host header attacks"):
# X-Host, X-Forwarded-Server, X-HTTP-Host-Override and Forwarded. The gateway refuses the others.
HOST_OVERRIDES = ["X-HTTP-Host-Override", "X-Host-Override"]


@pytest.mark.parametrize("name", HOST_OVERRIDES)
async def test_an_editor_cannot_save_a_host_override_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """An editor saves a custom header ``X-HTTP-Host-Override: internal-admin.example`` that
    front ends read as the request's real host, the way they read X-Host and
    X-Forwarded-Server (both refused). README, Security, "Values the runtime sends": custom
    headers cannot be "ones a front end reads as the request's real target", "so an editor
    cannot re-route or smuggle requests to the EHR"."""
    result = await save_header(gateway, tenant_id, name, "internal-admin.example")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


async def test_an_editor_cannot_save_an_accept_header(gateway: Gateway, tenant_id: str) -> None:
    """An editor saves ``Accept: application/fhir+xml``: the EHR then answers every runtime
    call in XML, which the runtime (reading JSON) cannot use, as surely as a Range or an
    Accept-Encoding the runtime does not decode. README, Security, "Values the runtime sends":
    custom headers cannot be "ones that shape the EHR's answer (Range, If-*,
    Accept-Encoding)"."""
    result = await save_header(gateway, tenant_id, "Accept", "application/fhir+xml")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


# Client-address headers of CDNs and WAFs the reserved names and patterns miss: AWS CloudFront's
# CloudFront-Viewer-Address (the viewer's address and port), Sucuri's X-Sucuri-ClientIP,
# Netlify's X-NF-Client-Connection-IP and Alibaba Cloud CDN's Ali-CDN-Real-IP.
CDN_CLIENT_ADDRESSES = [
    "CloudFront-Viewer-Address",
    "X-Sucuri-ClientIP",
    "X-NF-Client-Connection-IP",
    "Ali-CDN-Real-IP",
]


@pytest.mark.parametrize("name", CDN_CLIENT_ADDRESSES)
async def test_an_editor_cannot_save_a_cdns_client_address_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """An editor saves ``CloudFront-Viewer-Address: 10.0.0.5:443`` (or Sucuri's, Netlify's or
    Alibaba's client-address header): an EHR behind that CDN takes every runtime call as coming
    from the address the editor chose (access lists, audit by client address). README,
    Security, "Headers a proxy interprets": a custom header cannot carry "client-address and
    signed-in-user headers under any vendor's spelling"."""
    result = await save_header(gateway, tenant_id, name, "10.0.0.5:443")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


# Cloudflare's "Add TLS client auth headers" managed transform: what Cloudflare's mTLS found of
# the client certificate, as Cf-Cert-* request headers to the origin.
CLOUDFLARE_CLIENT_CERTIFICATE = ["Cf-Cert-Verified", "Cf-Cert-Presented", "Cf-Cert-Subject-DN"]


@pytest.mark.parametrize("name", CLOUDFLARE_CLIENT_CERTIFICATE)
async def test_an_editor_cannot_save_cloudflares_client_certificate_headers(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """An editor saves ``Cf-Cert-Verified: SUCCESS`` (or ``Cf-Cert-Subject-DN`` naming another
    client): an EHR behind Cloudflare's mTLS that reads them takes the runtime's calls as made
    with a verified client certificate of the editor's choosing. README, Security, "Headers a
    proxy interprets": a custom header cannot carry "the user or client certificate a sign-in or
    TLS front end authenticated, in the spellings of ... Cloudflare Access ..." (X-SSL-Client-Cert,
    SSL-Client-Verify and every *client-cert* are refused)."""
    result = await save_header(gateway, tenant_id, name, "SUCCESS")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


# IDNA's deviation characters: IDNA 2008 (the check, httpx) keeps them, IDNA 2003 (Python's own
# "idna" codec, which urllib, http.client and socket.getaddrinfo use; Java's java.net.IDN) and
# UTS #46 transitional processing map them to other letters, so each names two hosts:
# fhir.straße.example is xn--strae-oqa (IDNA 2008) or strasse (IDNA 2003); a final sigma is
# a plain sigma in IDNA 2003.
DEVIATIONS = [
    pytest.param("https://fhir.stra\u00dfe.example/api", id="sharp-s"),
    pytest.param("https://fhir.\u03c2igma.example/api", id="final-sigma"),
]


@pytest.mark.parametrize("base_url", DEVIATIONS)
async def test_a_host_with_an_idna_deviation_character_is_refused_when_saved(
    gateway: Gateway, tenant_id: str, base_url: str
) -> None:
    """An integrator saves the EHR base URL https://fhir.straße.example/api: the gateway checks
    and calls xn--strae-oqa.example (IDNA 2008), while a runtime reading the setting with
    Python's urllib or Java's IDN (IDNA 2003) calls fhir.strasse.example, another registrable
    domain, with the EHR's credentials. README, Security, "Outbound calls (SSRF)" and Calls the
    gateway makes: "a host that parsers read differently is refused when saved with
    AMBIGUOUS_HOST", "names that fail IDNA 2008" among them."""
    host = base_url.split("/")[2]
    assert host.encode("idna") != idna.encode(host)  # two parsers, two hosts
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    data = await gateway.execute(
        CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id,
        connection={"name": "EHR", "baseUrl": base_url, "environment": "NON_PRODUCTION"},
    )  # fmt: skip
    result: dict[str, Any] = data["createExternalGateway"]

    assert result["__typename"] == "ValidationFailed", result
    assert [(e["path"], e["code"]) for e in result["errors"]] == [
        (["connection", "baseUrl"], "AMBIGUOUS_HOST")
    ]


# Positive as written, zero as read: the duration reader the gateway itself checks with
# (isodate) gives timedelta(0) for each, as would a runtime holding a TTL in a timedelta (or in
# whole milliseconds).
ZERO_AS_READ = [
    pytest.param("PT0.0000001S", id="a-tenth-of-a-microsecond"),
    pytest.param("PT0.000000000000000000001H", id="a-vanishing-fraction-of-an-hour"),
]


@pytest.mark.parametrize("duration", ZERO_AS_READ)
async def test_a_ttl_that_reads_as_zero_is_refused(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    """An editor saves Athena's cacheDepartmentsDurationTtl as PT0.0000001S: positive in the
    text, so it passes the "longer than zero" check, but isodate (with which the gateway checks
    the value) and every runtime that holds a TTL in a timedelta read it as zero, so the cache
    the setting enables never keeps anything. README, API conventions: "Zero and negative durations
    are INVALID_DURATION"."""
    assert isodate.parse_duration(duration).total_seconds() == 0  # zero as read
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheDepartmentsDurationTtl=duration)

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "cacheDepartmentsDurationTtl"], "INVALID_DURATION")
    ]
    assert (await ttls(gateway, tenant_id))["cacheDepartmentsDurationTtl"] == "PT20H"
