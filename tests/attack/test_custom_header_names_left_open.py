"""Custom header names the reserved lists and patterns miss, each read by common front ends or
CGI-style servers as the request's routing, client or answer shape, which an editor must not
decide (see tests/gql/test_custom_headers.py for the rule):

- ``Proxy``: a CGI-style server (PHP-FPM, Go's net/http/cgi, Python's wsgiref CGI handler) hands
  it to the application as HTTP_PROXY, which HTTP clients read as their outbound proxy
  ("httpoxy", CVE-2016-5385): the EHR's own calls go through a host of the editor's choosing.
  The reserved prefix is ``proxy-``, so the bare name passes.
- client addresses by names the ``*-client-ip*`` / ``*connecting-ip*`` patterns do not match:
  ``Client-IP`` (HTTP_CLIENT_IP, read first by many PHP frameworks), ``X-Originating-IP``
  (Microsoft), ``X-Remote-IP`` / ``X-Remote-Addr`` / ``Remote-Addr``, ``X-Appengine-User-Ip``.
- ``Request-Range``: the older spelling of Range some servers still honour.
"""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.gql.test_custom_headers import headers, save_header

LEFT_OPEN = [
    "Proxy",
    "Client-IP",
    "X-Originating-IP",
    "X-Remote-IP",
    "X-Remote-Addr",
    "Remote-Addr",
    "X-Appengine-User-Ip",
    "Request-Range",
]


@pytest.mark.parametrize("name", LEFT_OPEN)
async def test_an_editor_cannot_save_a_routing_client_or_range_header_by_another_name(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "http://10.0.0.1:3128")

    assert result["__typename"] == "ValidationFailed", result
    assert (await headers(gateway, tenant_id))["customHeaders"] == []
