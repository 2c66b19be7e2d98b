"""A live connection is closed at its token's expiry by the wall clock, not the monotonic one."""

from __future__ import annotations

import time

import pytest

from ehr_gateway.server import websocket


async def test_the_wait_ends_only_once_the_wall_clock_reaches_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A wall clock slewed to run at 80% of the monotonic clock's pace: a sleep of the difference
    # alone would end while the token is still valid by the wall clock.
    start_wall, start_monotonic = time.time(), time.monotonic()

    def slewed_wall_clock() -> float:
        return start_wall + 0.8 * (time.monotonic() - start_monotonic)

    monkeypatch.setattr(websocket.time, "time", slewed_wall_clock)
    moment = start_wall + 0.2

    await websocket.sleep_until_wall_time(moment)

    assert slewed_wall_clock() >= moment
