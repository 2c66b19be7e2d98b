"""Holes found by a security review of the gateway, each shown by a test that fails while the
hole is open. Each test's description names the attack and the README claim it breaks."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
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
