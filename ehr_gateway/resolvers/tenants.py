"""A tenant id given to a capability: refused, naming the argument, unless it names a tenant."""

from __future__ import annotations

from ehr_gateway.ehr.tenants import INVALID_TENANT_ID, TENANT_ID_RULE, is_tenant_id
from ehr_gateway.resolvers.outcomes import Failed


def check_tenant_id(tenant_id: str) -> Failed | None:
    if is_tenant_id(tenant_id):
        return None
    return Failed.one(("tenantId",), INVALID_TENANT_ID, TENANT_ID_RULE)
