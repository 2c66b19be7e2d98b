"""The FHIR URL prefix sits between the external gateway's base URL and every FHIR call.

testExternalGatewayConnection calls the FHIR ``metadata`` endpoint under the gateway's base URL
and URL prefix: the URL is joined by path segments, so a host whose name starts with "metadata"
keeps its name (it became ``https:/metadata.invalid/metadata``).

Whom the gateway calls (base URL, token URL, JKU) needs ``integration:edit``, but an editor may
change the prefix: so it is a path and nothing else. Spliced as text,
``https://fhir.ehr.example.test`` + ``.attacker.example.test/FHIR`` calls another host with the
EHR's access token; joined by segments, ``..`` and ``?`` still move the call elsewhere on the
EHR's host."""

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


SELECT_PROVIDER = """
mutation SelectProvider($tenantId: ID!, $provider: EhrProvider!) {
  selectEhrProvider(tenantId: $tenantId, provider: $provider) { __typename }
}
"""
SAVE_PREFIX = """
mutation SavePrefix($tenantId: ID!, $input: FhirSettingsInput!) {
  updateFhirSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
PREFIX = """
query Prefix($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    fhir {
      ... on EpicFhirSettings { urlPrefix }
      ... on CernerFhirSettings { urlPrefix }
    }
  }
}
"""
NOT_A_PATH = [
    "https://attacker.example.test/FHIR",
    "@attacker.example.test/FHIR",
    ".attacker.example.test/FHIR",
    "//attacker.example.test/FHIR",
    "/FHIR/../../../other-tenant/FHIR",
    "/FHIR?_format=xml&redirect=",
    "/FHIR#",
    "\\\\attacker.example.test\\FHIR",
    "/FHIR%2F..%2Fother",
]


@pytest.mark.parametrize("provider", ["EPIC", "CERNER"])
@pytest.mark.parametrize("prefix", NOT_A_PATH)
async def test_an_editor_can_save_only_a_path_as_the_url_prefix(
    gateway: Gateway, tenant_id: str, provider: str, prefix: str
) -> None:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    block = provider.lower()
    await editor.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    saved = await editor.execute(
        SAVE_PREFIX, tenantId=tenant_id, input={block: {"urlPrefix": "/api/FHIR/R4"}}
    )
    assert saved["updateFhirSettings"]["__typename"] == "SettingsSaved", saved

    data = await editor.execute(
        SAVE_PREFIX, tenantId=tenant_id, input={block: {"urlPrefix": prefix}}
    )

    result = data["updateFhirSettings"]
    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", block, "urlPrefix"], "INVALID_URL_PREFIX")
    ]
    stored = await editor.execute(PREFIX, tenantId=tenant_id)
    assert stored["integrationSettings"]["fhir"]["urlPrefix"] == "/api/FHIR/R4"
