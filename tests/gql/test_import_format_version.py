"""importSettings takes only the format version an export writes: the integer 1. JSON's `1.0`
and `true` compare equal to 1 in Python, and a document carrying them is not one this gateway
wrote: an edited or foreign document must be refused by name, not read as if it were ours."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import EXPORT_SETTINGS, READ_VERSION, SELECT_EPIC

SET_FHIR = """
mutation SetFhir($tenantId: ID!) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: "/FHIR/R4"}}) { __typename }
}
"""
IMPORT = """
mutation Import($tenantId: ID!, $doc: JSON!, $dryRun: Boolean!) {
  importSettings(tenantId: $tenantId, document: $doc, dryRun: $dryRun) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""


async def _export(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR, tenantId=tenant_id)
    document: dict[str, Any] = (await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))[
        "exportSettings"
    ]
    return document


async def test_an_export_carries_the_integer_format_version_and_imports(
    gateway: Gateway, tenant_id: str
) -> None:
    document = await _export(gateway, tenant_id)
    assert type(document["formatVersion"]) is int

    saved = await gateway.execute(IMPORT, tenantId=f"{tenant_id}-prod", doc=document, dryRun=False)
    assert saved["importSettings"]["__typename"] == "SettingsSaved"


@pytest.mark.parametrize(
    "format_version",
    [
        pytest.param(1.0, id="float"),
        pytest.param(True, id="true"),
        pytest.param("1", id="string"),
        pytest.param([1], id="list"),
    ],
)
async def test_a_format_version_of_another_type_is_refused_by_name(
    gateway: Gateway, tenant_id: str, format_version: Any
) -> None:
    document = {**await _export(gateway, tenant_id), "formatVersion": format_version}
    production = f"{tenant_id}-prod"
    await gateway.execute(SELECT_EPIC, tenantId=production)

    for dry_run in (True, False):
        refused = await gateway.execute(IMPORT, tenantId=production, doc=document, dryRun=dry_run)
        assert refused["importSettings"] == {
            "__typename": "ValidationFailed",
            "errors": [{"path": ["document", "formatVersion"], "code": "UNSUPPORTED_VERSION"}],
        }
    read = await gateway.execute(READ_VERSION, tenantId=production)
    assert read["integrationSettings"]["version"] == 1
