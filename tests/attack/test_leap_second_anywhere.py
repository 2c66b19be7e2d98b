"""RFC 3339 (5.7, Appendix D) has a leap second only as the last second of a UTC day, 23:59:60
UTC (at the end of a month): with an offset, the local minute that is 23:59 UTC. The DateTime
scalar takes second 60 in any minute of any day, and reads it as second 59.999999 of that
minute, so a value RFC 3339 forbids is accepted as a different instant rather than refused."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway

CHANGED_SINCE = """
query Changed($since: DateTime) {
  tenants(changedSince: $since) { items { tenantId } }
}
"""


@pytest.mark.parametrize(
    "since", ["2026-05-04T09:30:60Z", "2016-12-31T23:59:60+02:00", "2026-05-04T12:00:60.5Z"]
)
async def test_second_60_outside_the_last_utc_minute_of_a_day_is_refused(
    gateway: Gateway, since: str
) -> None:
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["message"].startswith("Variable '$since' has an invalid value"), error
