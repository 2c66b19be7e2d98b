"""Attack on last session's strict RFC 3339 DateTime (gql/scalars.py): the pattern checks the
offset's shape (``[+-]\\d{2}:\\d{2}``) but not its range, and ``datetime.fromisoformat`` takes
any minutes, so ``+05:99`` (RFC 3339 time-numoffset: minutes 00-59) is accepted and read as
``+06:39``: a client's typo silently moves the instant by 40 minutes. The other way, RFC 3339
(section 5.6, 5.7) allows second 60 at a leap second and the year 0000; the scalar refuses both.
"""

from __future__ import annotations

import pytest

from tests.conftest import Gateway

CHANGED_SINCE = """
query Changed($since: DateTime) {
  tenants(changedSince: $since, first: 1) { items { tenantId } }
}
"""
REFUSED = "expected an RFC 3339 date and time with its UTC offset, such as 2026-05-04T09:30:00Z"


@pytest.mark.parametrize(
    "value", ["2026-05-04T09:30:00+05:99", "2026-05-04T09:30:00-00:60", "2026-05-04T09:30:00+00:99"]
)
async def test_an_offset_with_minutes_past_59_is_refused(gateway: Gateway, value: str) -> None:
    body = await gateway.post(CHANGED_SINCE, since=value)

    assert body.get("data") is None, body
    assert REFUSED in body["errors"][0]["message"], body


@pytest.mark.parametrize("value", ["2016-12-31T23:59:60Z", "2016-12-31T18:59:60-05:00"])
async def test_a_leap_second_as_rfc_3339_writes_it_is_accepted(
    gateway: Gateway, value: str
) -> None:
    body = await gateway.post(CHANGED_SINCE, since=value)

    assert "errors" not in body, body
