"""Attack: an editor sets the client-address header of a CDN or load balancer the EHR sits behind.

The rule refuses True-Client-IP (Akamai, Cloudflare Enterprise), X-Real-IP and X-Client-IP
because front ends take them as the caller's address (allow lists by address, per-address
limits, audit). The same header under other vendors' names is saved: Cloudflare's
CF-Connecting-IP, Fastly's Fastly-Client-IP, X-Cluster-Client-IP (Rackspace, Riverbed) and
X-ProxyUser-Ip (Google Cloud). An EHR behind one of those front ends then sees every call the
runtime makes as coming from the address the editor chose."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.gql.test_custom_headers import headers, save_header

CLIENT_ADDRESS_HEADERS = [
    "CF-Connecting-IP",
    "Fastly-Client-IP",
    "X-Cluster-Client-IP",
    "X-ProxyUser-Ip",
]


@pytest.mark.parametrize("name", CLIENT_ADDRESS_HEADERS)
async def test_a_front_ends_client_address_header_is_refused(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "10.0.0.1")

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "customHeaders", "0", "name"], "RESERVED_HEADER")
    ]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []
