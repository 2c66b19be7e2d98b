"""A FORBIDDEN error names the tenant only when the caller sent a well-formed tenant id: anything
else (5,000 characters, a NUL, a lone surrogate, a query operator) is not repeated back."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import READ_VERSION

ILL_FORMED = ["a" * 5000, "acme\x00", "acme\ud800", '{"$ne":1}', "acme\n2099 forged"]


@pytest.mark.parametrize("sent", ILL_FORMED, ids=["long", "nul", "surrogate", "operator", "nl"])
async def test_an_ill_formed_tenant_id_is_not_echoed(gateway: Gateway, sent: str) -> None:
    viewer = gateway.as_caller(tenants=["acme"], roles=["viewer"])

    body = await viewer.post(READ_VERSION, tenantId=sent)

    assert body["data"] == {"integrationSettings": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN", "permission": "settings:read"}
    assert error["message"] == "missing permission settings:read on the requested tenant"


async def test_a_well_formed_tenant_id_is_named(gateway: Gateway) -> None:
    viewer = gateway.as_caller(tenants=["acme"], roles=["viewer"])

    body = await viewer.post(READ_VERSION, tenantId="globex")

    assert body["errors"][0]["message"] == "missing permission settings:read on tenant globex"
