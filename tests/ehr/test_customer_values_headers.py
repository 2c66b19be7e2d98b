"""Custom headers as the API gateways in front of EHRs ask for them (Azure API Management,
MuleSoft, IBM API Connect, Kong, Apigee): saved and read back with their names as spelled."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import UPDATE_HEADERS
from tests.ehr.customer_values import CUSTOM_HEADERS, read, saved, saved_block, select


@pytest.mark.parametrize("provider", ["ATHENA", "CERNER", "ELLKAY"])
async def test_custom_headers_are_saved_and_read_back_as_spelled(
    gateway: Gateway, tenant_id: str, provider: str
) -> None:
    await select(gateway, tenant_id, provider)

    await saved(
        gateway,
        UPDATE_HEADERS,
        tenantId=tenant_id,
        input={provider.lower(): {"customHeaders": CUSTOM_HEADERS}},
    )

    assert (await read(gateway, tenant_id))["headers"]["customHeaders"] == CUSTOM_HEADERS


async def test_a_long_header_value_is_kept_whole(gateway: Gateway, tenant_id: str) -> None:
    """A signed API token, as some gateways take in a header: long, but within the limit."""
    header = {"name": "X-Api-Token", "value": "eyJhbGciOiJSUzI1NiJ9." + "A" * 1000}
    assert len(header["value"]) <= 1024
    await select(gateway, tenant_id, "CERNER")

    stored = await saved_block(
        gateway, tenant_id, UPDATE_HEADERS, "cerner", {"customHeaders": [header]}
    )

    assert stored["headers"]["customHeaders"] == [header]
