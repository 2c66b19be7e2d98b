"""One operation may ask for 100 history and audit entries in all: aliases of settingsHistory
(each entry a whole settings document) cannot multiply a response into hundreds of megabytes."""

from __future__ import annotations

import json

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER

UPDATE_MAPPING = """
mutation UpdateMapping($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
_PAGE = "settingsHistory(tenantId: $tenantId, first: 100) { versions { version settings { ehr { ... on AthenaSettings { customFieldMapping { name value } } } } } }"  # noqa: E501
# The attack: the largest history page under four aliases.
FOUR_FULL_PAGES = (
    "query FourPages($tenantId: ID!) {" + " ".join(f"a{n}: {_PAGE}" for n in range(4)) + "}"
)
TWO_HALF_PAGES = """
query TwoHalves($tenantId: ID!) {
  newer: settingsHistory(tenantId: $tenantId, first: 50) { versions { version } }
  older: settingsHistory(tenantId: $tenantId, first: 50, before: 3) { versions { version } }
}
"""
HISTORY_AND_AUDIT = """
query HistoryAndAudit($tenantId: ID!) {
  settingsHistory(tenantId: $tenantId, first: 60) { versions { version } }
  auditLog(tenantId: $tenantId, first: 60) { entries { version } }
}
"""
TWO_VERIFICATIONS = """
query TwoVerifications($tenantId: ID!) {
  first: auditIntegrity(tenantId: $tenantId) { intact }
  second: auditIntegrity(tenantId: $tenantId) { intact }
}
"""


async def large_history(gateway: Gateway, tenant_id: str, versions: int) -> None:
    """``versions`` versions of an Athena tenant, each with a 200-entry custom field mapping."""
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    for version in range(versions - 1):
        mapping = [{"name": f"n{i:03d}", "value": f"{version}-" + "y" * 60} for i in range(200)]
        await gateway.execute(
            UPDATE_MAPPING, tenantId=tenant_id,
            input={"athena": {"customFieldEnabled": True, "customFieldMapping": mapping}},
        )  # fmt: skip


def cost_refusals(body: dict[str, object]) -> list[list[object]]:
    errors = body.get("errors") or []
    assert isinstance(errors, list)
    return [error["path"] for error in errors if error["extensions"]["code"] == "COST_LIMIT"]


async def test_aliased_full_history_pages_are_refused_past_one(
    gateway: Gateway, tenant_id: str
) -> None:
    await large_history(gateway, tenant_id, versions=6)

    body = await gateway.post(FOUR_FULL_PAGES, tenantId=tenant_id)

    # One alias took the whole budget; the next is refused, and as the fields are non-null
    # the operation answers no data at all: a few hundred bytes, where it was four pages.
    assert body["data"] is None
    assert cost_refusals(body) and len(cost_refusals(body)) == len(body["errors"])
    assert "more than 100 history and audit entries" in body["errors"][0]["message"]
    assert len(json.dumps(body)) < 2_000


async def test_pages_that_fit_the_budget_together_are_answered(
    gateway: Gateway, tenant_id: str
) -> None:
    await large_history(gateway, tenant_id, versions=4)
    data = await gateway.execute(TWO_HALF_PAGES, tenantId=tenant_id)
    assert [v["version"] for v in data["newer"]["versions"]] == [4, 3, 2, 1]
    assert [v["version"] for v in data["older"]["versions"]] == [2, 1]


async def test_history_and_audit_entries_share_the_budget(gateway: Gateway, tenant_id: str) -> None:
    await large_history(gateway, tenant_id, versions=2)
    body = await gateway.post(HISTORY_AND_AUDIT, tenantId=tenant_id)
    assert len(cost_refusals(body)) == 1
    assert body["data"] is None


async def test_a_chain_verification_takes_the_whole_budget(
    gateway: Gateway, tenant_id: str
) -> None:
    await large_history(gateway, tenant_id, versions=2)
    body = await gateway.post(TWO_VERIFICATIONS, tenantId=tenant_id)
    assert len(cost_refusals(body)) == 1
    assert body["data"] is None
    one = await gateway.execute(
        "query One($tenantId: ID!) { auditIntegrity(tenantId: $tenantId) { intact } }",
        tenantId=tenant_id,
    )
    assert one == {"auditIntegrity": {"intact": True}}


async def test_each_operation_has_a_budget_of_its_own(gateway: Gateway, tenant_id: str) -> None:
    await large_history(gateway, tenant_id, versions=2)
    for _ in range(3):
        data = await gateway.execute(_as_query(_PAGE), tenantId=tenant_id)
        assert len(data["settingsHistory"]["versions"]) == 2


def _as_query(selection: str) -> str:
    return "query OnePage($tenantId: ID!) { " + selection + " }"
