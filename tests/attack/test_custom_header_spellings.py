"""Attack on last session's custom-header fix (ehr/fields.py: reserved names compared with ``_``
read as ``-``; CDN client-address headers reserved).

- Uniqueness is not compared the way the reserved check is: ``X-Api-Key`` and ``X_Api_Key``
  are both saved, and the CGI-style servers the fix cites (PHP-FPM, WSGI) read both as
  HTTP_X_API_KEY, so which value the EHR sees depends on its server (one wins, or they are
  joined): an editor can shadow a header another editor set.
- The client-address and original-target list is a deny list of some vendors' names; others
  that front ends act on the same way are saved: Azure Front Door's X-Azure-ClientIP and
  X-Azure-SocketIP, Fly.io's Fly-Client-IP, Imperva's Incap-Client-IP, Cloudflare's
  CF-Connecting-IPv6, nginx's X-Original-URI (auth_request), Envoy's X-Envoy-Original-Path and
  X-Envoy-External-Address, and X-Scheme (read as the request's scheme by Tornado and nginx
  setups, as X-Forwarded-Proto is).
- Headers that frame the EHR's answer (Range, conditional requests, Accept-Encoding) are saved,
  though Content-Type and Content-Encoding are reserved as "how the gateway calls".
"""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.gql.test_custom_headers import SAVE_HEADERS, SELECT, headers, save_header


async def test_two_spellings_of_one_header_are_not_both_saved(
    gateway: Gateway, tenant_id: str
) -> None:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    await editor.execute(SELECT, tenantId=tenant_id, provider="ATHENA")
    block = {
        "customHeaders": [
            {"name": "X-Api-Key", "value": "practice-7"},
            {"name": "X_Api_Key", "value": "practice-9"},
        ]
    }

    data = await editor.execute(SAVE_HEADERS, tenantId=tenant_id, input={"athena": block})

    result = data["updateHeaderSettings"]
    assert result["__typename"] == "ValidationFailed", result
    assert (await headers(gateway, tenant_id))["customHeaders"] == []


@pytest.mark.parametrize(
    "name",
    ["X-Azure-ClientIP", "X-Azure-SocketIP", "Fly-Client-IP", "Incap-Client-IP",
     "CF-Connecting-IPv6", "X-Original-URI", "X-Envoy-Original-Path",
     "X-Envoy-External-Address", "X-Scheme"],
)  # fmt: skip
async def test_another_vendors_client_address_or_target_header_is_refused(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "10.0.0.1")

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "customHeaders", "0", "name"], "RESERVED_HEADER")
    ]


# Request headers that decide how the EHR frames or encodes its answer, or whether it sends one:
# reserved for the same reason as Content-Type and Content-Encoding (how the runtime's request
# body is read). Range gets a 206 with part of a FHIR resource; If-None-Match and
# If-Modified-Since a 304 with no body; Accept-Encoding a coding the runtime may not decode.
@pytest.mark.parametrize(
    "name", ["Range", "If-Range", "If-None-Match", "If-Modified-Since", "Accept-Encoding"]
)
async def test_a_header_that_frames_the_ehrs_answer_is_refused(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "bytes=0-99")

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "customHeaders", "0", "name"], "RESERVED_HEADER")
    ]
