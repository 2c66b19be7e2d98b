"""Attack: an editor saves a reserved header under its underscore spelling.

The reserved-header rule (ehr.fields._check_header_name) compares the lower-cased name with
its lists as written, so ``X_Forwarded_For`` is saved although ``X-Forwarded-For`` is refused.
Servers that hand headers to applications as CGI-style variables (PHP-FPM, WSGI/CGI servers,
Gunicorn before 22, several frameworks) read ``X_Forwarded_For`` and ``X-Forwarded-For`` as the
same ``HTTP_X_FORWARDED_FOR``: the underscore spelling reaches the EHR's application as the very
header the rule exists to keep out (client address, method override, framing)."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.gql.test_custom_headers import headers, save_header

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
async def test_the_underscore_spelling_of_a_reserved_header_is_refused(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "203.0.113.7")

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "customHeaders", "0", "name"], "RESERVED_HEADER")
    ]
    assert (await headers(gateway, tenant_id))["customHeaders"] == []
