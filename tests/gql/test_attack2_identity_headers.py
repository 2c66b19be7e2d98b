"""Headers an SSO or TLS-terminating front end sets as the user or client certificate it
authenticated, which the application behind it trusts as the caller's identity: the same class
as X-Remote-User (reserved), spelt the way other front ends spell it (oauth2-proxy, Azure App
Service authentication, Google IAP, AWS ALB, Grafana-style auth proxies, nginx/IIS client
certificates). An editor who may save one impersonates whomever they like to the EHR's API."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.gql.test_custom_headers import save_header

FRONT_END_IDENTITY = [
    "X-Auth-Request-User", "X-Auth-Request-Email", "X-Authenticated-User",
    "X-MS-CLIENT-PRINCIPAL-NAME", "X-MS-CLIENT-PRINCIPAL", "X-Goog-Authenticated-User-Email",
    "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Data", "X-WEBAUTH-USER", "X-SSL-Client-Cert",
    "X-Client-Cert", "X-ARR-ClientCert", "SSL-Client-Verify",
]  # fmt: skip


@pytest.mark.parametrize("name", FRONT_END_IDENTITY)
async def test_an_editor_cannot_save_a_front_ends_authenticated_identity_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    result = await save_header(gateway, tenant_id, name, "admin@hospital.example")

    assert result["__typename"] == "ValidationFailed", (name, result)
