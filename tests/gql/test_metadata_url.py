"""testExternalGatewayConnection calls the FHIR ``metadata`` endpoint under the gateway's base
URL and URL prefix: the URL is joined by path segments, so a host whose name starts with
"metadata" keeps its name (it became ``https:/metadata.invalid/metadata``)."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import UPDATE_FHIR
from tests.gql.test_external_gateway import _connect, _test


@pytest.mark.parametrize(
    ("base_url", "prefix", "called"),
    [
        ("https://metadata.invalid/", None, "https://metadata.invalid/metadata"),
        ("https://metadata.invalid", "/FHIR/R4/", "https://metadata.invalid/FHIR/R4/metadata"),
        ("https://ehr.invalid/metadata/", None, "https://ehr.invalid/metadata/metadata"),
    ],
)
async def test_the_metadata_url_keeps_the_host_and_joins_the_prefix(
    gateway: Gateway, tenant_id: str, base_url: str, prefix: str | None, called: str
) -> None:
    await _connect(gateway, tenant_id, base_url)
    if prefix is not None:
        await gateway.execute(
            UPDATE_FHIR, tenantId=tenant_id, input={"epic": {"urlPrefix": prefix}}
        )

    result = await _test(gateway, tenant_id)

    assert result["url"] == called
    assert result["failure"]["code"] == "UNREACHABLE"  # type: ignore[index]  # .invalid: no such host
