"""Attack: an editor points FHIR calls elsewhere through the FHIR URL prefix.

The settings that decide whom the gateway calls (the external gateway's base URL, the OAuth
token URL, the JKU) need ``integration:edit``; an editor may not change them. The FHIR settings'
``urlPrefix`` ("an optional prefix between the base URL and the FHIR object, e.g. /FHIR/R4") is
free text an editor may save, and nothing checks that it is a path: a whole URL, a userinfo
marker (``@host``), a host suffix (``.host``), dot segments, a query or a fragment are stored
and handed to every runtime that builds the EHR's FHIR URLs from base URL + prefix. Spliced as
text, ``https://fhir.ehr.example.test`` + ``.attacker.example.test/FHIR`` calls another host with
the EHR's access token; joined by segments (as the gateway's own connection test does), ``..``
and ``?`` still move the call to another path of the EHR's host."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway

SELECT_EPIC = """
mutation SelectEpic($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
SAVE_PREFIX = """
mutation SavePrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
PREFIX = """
query Prefix($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { fhir { ... on EpicFhirSettings { urlPrefix } } }
}
"""
NOT_A_PATH = [
    "https://attacker.example.test/FHIR",
    "@attacker.example.test/FHIR",
    ".attacker.example.test/FHIR",
    "/FHIR/../../../other-tenant/FHIR",
    "/FHIR?_format=xml&redirect=",
    "/FHIR#",
    "\\\\attacker.example.test\\FHIR",
]


@pytest.mark.parametrize("prefix", NOT_A_PATH)
async def test_an_editor_cannot_save_a_url_prefix_that_is_not_a_path(
    gateway: Gateway, tenant_id: str, prefix: str
) -> None:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    await editor.execute(SELECT_EPIC, tenantId=tenant_id)
    await editor.execute(SAVE_PREFIX, tenantId=tenant_id, prefix="/api/FHIR/R4")

    result = (await editor.execute(SAVE_PREFIX, tenantId=tenant_id, prefix=prefix))[
        "updateFhirSettings"
    ]

    assert result["__typename"] == "ValidationFailed", result
    stored = await editor.execute(PREFIX, tenantId=tenant_id)
    assert stored["integrationSettings"]["fhir"]["urlPrefix"] == "/api/FHIR/R4"
