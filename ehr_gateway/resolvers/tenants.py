"""Tenant ids: which strings name a tenant. Anything else names none, is never looked up or
stored, and may not even be valid Unicode (JSON can carry a lone surrogate)."""

from __future__ import annotations

import re

from ehr_gateway.resolvers.outcomes import Failed

TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_tenant_id(tenant_id: str) -> Failed | None:
    if TENANT_ID.fullmatch(tenant_id):
        return None
    return Failed.one(
        ("tenantId",),
        "INVALID_TENANT_ID",
        "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
