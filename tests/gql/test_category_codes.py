"""Category filter codes are FHIR token search values: `code`, `system|code` or `|code`, codes as
FHIR's `code` type defines them (single inner spaces), with FHIR search escaping. What a token
search would misread (an empty code, a stray `|` or `,`, a broken escape) is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER

SAVE_CATEGORY_CODES = """
mutation SaveCategoryCodes($tenantId: ID!, $input: FhirSettingsInput!) {
  updateFhirSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

REAL_CODES = [
    "http://snomed.info/sct|409063004",
    "Lab Order",
    "|409063004",
    "409063004",
    "https://fhir.cerner.com/ec2458f2-1e24-41c8-b71b-0e701af7583d/codeSet/6000|2513",
    "urn:oid:2.16.840.1.113883.6.96|363679005",
    # Escaped separators are part of the code: "Lab|Micro", "A,B", "$1", "C:\".
    r"Lab\|Micro",
    r"http://example.test/codes|A\,B",
    r"\$1",
    "C:\\\\",
]


async def select(gateway: Gateway, tenant_id: str, provider: str) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    assert data["selectEhrProvider"]["__typename"] == "SettingsSaved"


async def category_codes(gateway: Gateway, tenant_id: str) -> list[str]:
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    codes: list[str] = data["integrationSettings"]["fhir"]["categoryFilterArray"]
    return codes


async def save(gateway: Gateway, tenant_id: str, member: str, codes: list[str]) -> dict[str, Any]:
    data = await gateway.execute(
        SAVE_CATEGORY_CODES, tenantId=tenant_id, input={member: {"categoryFilterArray": codes}}
    )
    result: dict[str, Any] = data["updateFhirSettings"]
    return result


@pytest.mark.parametrize("provider", ["EPIC", "ATHENA", "CERNER"])
async def test_fhir_token_forms_are_saved_as_typed(
    gateway: Gateway, tenant_id: str, provider: str
) -> None:
    await select(gateway, tenant_id, provider)

    result = await save(gateway, tenant_id, provider.lower(), REAL_CODES)

    assert result["__typename"] == "SettingsSaved", result
    assert await category_codes(gateway, tenant_id) == REAL_CODES


REFUSED = [
    pytest.param("Lab  Order", id="double-inner-space"),
    pytest.param("Lab\tOrder", id="tab"),
    pytest.param("Lab\u0001Order", id="control-character"),
    pytest.param("http://snomed.info/sct|", id="system-without-code"),
    pytest.param("|", id="bar-alone"),
    pytest.param("http://snomed.info/sct|409063004|x", id="two-bars"),
    pytest.param("409063004,409063005", id="unescaped-comma"),
    pytest.param("price$1", id="unescaped-dollar"),
    pytest.param("Lab\\Order", id="escape-of-a-letter"),
    pytest.param("Lab Order\\", id="trailing-backslash"),
    pytest.param("snomed sct|409063004", id="system-not-a-uri"),
    pytest.param("/sct|409063004", id="system-relative"),
]


@pytest.mark.parametrize("value", REFUSED)
async def test_what_a_token_search_would_misread_is_refused(
    gateway: Gateway, tenant_id: str, value: str
) -> None:
    await select(gateway, tenant_id, "EPIC")

    result = await save(gateway, tenant_id, "epic", ["409063004", value])

    assert result["__typename"] == "ValidationFailed"
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "epic", "categoryFilterArray", "1"], "INVALID_CODE")
    ]
    assert await category_codes(gateway, tenant_id) == []
