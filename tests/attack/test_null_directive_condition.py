"""``@skip(if: $s)`` / ``@include(if: $s)`` with ``$s: Boolean = false`` sent as an explicit
null: graphql-core refuses the null when it collects the field's selections, after validation.
Below the root it is a client's mistake like any other, and must be answered as one (a typed
error naming the argument, as the same null on a root field is), not as an internal error with
an error id and a stack trace in the log."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER

SKIPPED_WITH_A_DEFAULT = """
query Read($tenantId: ID!, $skip: Boolean = false) {
  integrationSettings(tenantId: $tenantId) { version ehr @skip(if: $skip) { __typename } }
}
"""
INCLUDED_WITH_A_DEFAULT = """
query Read($tenantId: ID!, $include: Boolean = true) {
  integrationSettings(tenantId: $tenantId) { version provider @include(if: $include) }
}
"""


async def test_a_null_skip_condition_below_the_root_is_a_client_error(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    answer = await gateway.post(SKIPPED_WITH_A_DEFAULT, tenantId=tenant_id, skip=None)

    codes = [error.get("extensions", {}).get("code") for error in answer["errors"]]
    assert "INTERNAL_SERVER_ERROR" not in codes, answer


async def test_a_null_include_condition_below_the_root_is_a_client_error(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    answer = await gateway.post(INCLUDED_WITH_A_DEFAULT, tenantId=tenant_id, include=None)

    codes = [error.get("extensions", {}).get("code") for error in answer["errors"]]
    assert "INTERNAL_SERVER_ERROR" not in codes, answer
