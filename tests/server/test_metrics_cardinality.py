"""The request metrics' ``operation`` label stays bounded: one label per schema root field, and
``multiple`` for a document asking several. A label per combination of root fields let one
viewer mint a series for each of the thousands of combinations of a dozen query fields."""

from __future__ import annotations

import itertools

from tests.conftest import Gateway

# Root fields a viewer may ask for in one document, in any combination.
ROOT_FIELDS = (
    "integrationSettings(tenantId: $tenantId) { version }",
    "readiness(tenantId: $tenantId) { ready }",
    "settingsHistory(tenantId: $tenantId, first: 1) { hasMore }",
    "auditIntegrity(tenantId: $tenantId) { intact }",
    "exportSettings(tenantId: $tenantId)",
    "__typename",
)
SAME_FIELD_TWICE = """
query Twice($tenantId: ID!) {
  first: integrationSettings(tenantId: $tenantId) { version }
  second: integrationSettings(tenantId: $tenantId) { version }
}
"""


def request_series(metrics: str) -> set[str]:
    return {
        line.rpartition(" ")[0]
        for line in metrics.splitlines()
        if line.startswith("ehrgw_http_requests_total{")
    }


async def test_combinations_of_root_fields_share_one_label(
    gateway: Gateway, tenant_id: str
) -> None:
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    combinations = [
        combination
        for size in range(2, len(ROOT_FIELDS) + 1)
        for combination in itertools.combinations(ROOT_FIELDS, size)
    ]
    for combination in combinations:
        await viewer.post(
            f"query Q($tenantId: ID!) {{ {' '.join(combination)} }}", tenantId=tenant_id
        )
    await viewer.post(SAME_FIELD_TWICE, tenantId=tenant_id)

    series = request_series((await gateway.client.get("/metrics")).text)

    assert len(combinations) == 57
    assert series == {
        'ehrgw_http_requests_total{operation="query:multiple",status="200"}',
        'ehrgw_http_requests_total{operation="query:integrationSettings",status="200"}',
    }
