"""Findings of a security test of the gateway (second round of the day): each test is an attack
that succeeds today, and fails until the claim of README.md it names holds again. Tests that
leave malformed data behind use a database of their own."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.gql.test_custom_headers import save_header

# Signed-in-user and routing headers of front ends the reserved names and patterns miss, each
# read by the application behind that front end as who the caller is or where the call goes.
UNRESERVED_FRONT_END_HEADERS = [
    # authentik's proxy outpost: the user it signed in, and their groups.
    "X-Authentik-Username",
    "X-Authentik-Groups",
    # Keycloak Gatekeeper / Louketo proxy: the user, their id and roles.
    "X-Auth-Username",
    "X-Auth-Userid",
    "X-Auth-Roles",
    # Vouch Proxy and Tailscale Serve: the signed-in user.
    "X-Vouch-User",
    "Tailscale-User-Login",
    # Apache mod_auth_openidc: the ID token's claims, as OIDC_CLAIM_<name>.
    "OIDC_CLAIM_sub",
    # Rack::Sendfile (CVE-2025-61780): with these, Rack answers X-Accel-Redirect to any path,
    # which nginx in front then serves from its internal locations.
    "X-Sendfile-Type",
    "X-Accel-Mapping",
]


@pytest.mark.parametrize("name", UNRESERVED_FRONT_END_HEADERS)
async def test_an_editor_can_save_a_signed_in_user_or_internal_redirect_header(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """Attack: an editor (the account admin) saves a custom header that the EHR's sign-in front
    end or its framework reads as the authenticated user (authentik, Keycloak Gatekeeper, Vouch,
    Tailscale, mod_auth_openidc) or as an internal-redirect mapping (Rack::Sendfile), so every
    call the runtime makes to the EHR names a user of the editor's choosing or reaches the EHR
    front end's internal locations. Breaks README, Security, "Headers a proxy interprets":
    "client-address and signed-in-user headers under any vendor's spelling", and "Values the
    runtime sends": "so an editor cannot re-route or smuggle requests to the EHR"."""
    result = await save_header(gateway, tenant_id, name, "admin")

    assert result["__typename"] == "ValidationFailed", f"{name} saved: {result}"
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"], result
