"""A rule between two settings reports its error at a field the update sent, naming the other in
its message, so that a form shows it next to the input the user changed. When both were sent the
slot search rule blames the per-search maximum."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER

SAVE_EPIC_SETTINGS = """
mutation SaveEpicSettings($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

SLOT_SEARCH_RANGES = """
query SlotSearchRanges($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr {
      ... on EpicSettings {
        epicMaximumSlotSearchDateRangeInDays maxAllowedSlotSearchDateRangeDays soapUsername
      }
    }
  }
}
"""

PER_SEARCH = "epicMaximumSlotSearchDateRangeInDays"
TOTAL = "maxAllowedSlotSearchDateRangeDays"


async def epic_tenant(gateway: Gateway, tenant_id: str) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    assert data["selectEhrProvider"]["__typename"] == "SettingsSaved"


async def save(gateway: Gateway, tenant_id: str, **fields: Any) -> dict[str, Any]:
    data = await gateway.execute(SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": fields})
    result: dict[str, Any] = data["updateEhrSettings"]
    return result


async def stored(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    data = await gateway.execute(SLOT_SEARCH_RANGES, tenantId=tenant_id)
    settings: dict[str, Any] = data["integrationSettings"]
    return settings


def blamed(result: dict[str, Any]) -> list[tuple[list[str], str]]:
    assert result["__typename"] == "ValidationFailed", result
    return [(error["path"], error["code"]) for error in result["errors"]]


async def test_sending_only_the_total_blames_the_total(gateway: Gateway, tenant_id: str) -> None:
    await epic_tenant(gateway, tenant_id)
    # The per-search maximum stays at its default, 30.
    before = await stored(gateway, tenant_id)

    result = await save(gateway, tenant_id, **{TOTAL: 20})

    assert blamed(result) == [
        (["input", "epic", TOTAL], "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL"),
    ]
    assert PER_SEARCH in result["errors"][0]["message"]
    assert await stored(gateway, tenant_id) == before


async def test_sending_only_the_per_search_maximum_blames_it(
    gateway: Gateway, tenant_id: str
) -> None:
    await epic_tenant(gateway, tenant_id)
    await save(gateway, tenant_id, **{PER_SEARCH: 10, TOTAL: 20})

    result = await save(gateway, tenant_id, **{PER_SEARCH: 25})

    assert blamed(result) == [
        (["input", "epic", PER_SEARCH], "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL"),
    ]
    assert TOTAL in result["errors"][0]["message"]


async def test_clearing_the_total_back_to_its_default_blames_the_total(
    gateway: Gateway, tenant_id: str
) -> None:
    await epic_tenant(gateway, tenant_id)
    await save(gateway, tenant_id, **{PER_SEARCH: 100, TOTAL: 120})

    result = await save(gateway, tenant_id, **{TOTAL: None})

    assert blamed(result) == [
        (["input", "epic", TOTAL], "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL"),
    ]


async def test_sending_both_blames_the_per_search_maximum(gateway: Gateway, tenant_id: str) -> None:
    await epic_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, **{PER_SEARCH: 40, TOTAL: 20})

    assert blamed(result) == [
        (["input", "epic", PER_SEARCH], "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL"),
    ]


async def test_a_soap_username_sent_alone_is_blamed_not_the_password_it_lacks(
    gateway: Gateway, tenant_id: str
) -> None:
    await epic_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, soapUsername="soap-refills")

    assert blamed(result) == [
        (["input", "epic", "soapUsername"], "SOAP_CREDENTIALS_INCOMPLETE"),
    ]
    assert "soapPassword" in result["errors"][0]["message"]
    assert (await stored(gateway, tenant_id))["ehr"]["soapUsername"] is None
