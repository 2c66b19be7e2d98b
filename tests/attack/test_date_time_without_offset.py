"""Attack (odd values of ``changedSince``): a date and time without its UTC offset.

``DateTime`` is specified as RFC 3339 (``@specifiedBy``) and described as "a date and time with
its UTC offset", which RFC 3339 requires. The gateway accepts a local time without an offset
(``2026-05-04T09:30:00``) and a bare date, and reads them as UTC: a dashboard in UTC+2 that polls
``tenants(changedSince:)`` with its local clock's time asks for changes two hours later than it
meant and silently never sees the tenants changed in between."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway

CHANGED_SINCE = """
query Changed($since: DateTime) {
  tenants(changedSince: $since) { items { tenantId } }
}
"""


@pytest.mark.parametrize("since", ["2026-05-04T09:30:00", "2026-05-04", "2026-05-04T24:00:00Z"])
async def test_a_date_time_that_is_not_rfc_3339_is_refused(gateway: Gateway, since: str) -> None:
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", error
    assert "$since" in error["message"], error
