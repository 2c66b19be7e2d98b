"""Readiness from what the gateway keeps: with the database stalled, /readyz answers at once
(an orchestrator's probe has a second or so), says why the gateway is not ready, and goes ready
again by itself when the database does. It used to ping the database on every probe, and a
stalled database held the probe for as long as the driver's timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.faults._database import stalled
from tests.processes import GatewayProcess

# The promise to orchestrators: a probe is answered within this, whatever the database does.
PROBE_TIMEOUT_S = 1.0


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    # The default database timeout (5 s): far longer than a probe may take.
    gateway = GatewayProcess(
        tmp_path / "gateway", EHRGW_MONGODB_URL=database.url, EHRGW_DATABASE="readiness"
    )
    yield gateway
    gateway.stop(5)


def probe(gateway: GatewayProcess) -> tuple[int, dict[str, Any]]:
    """/readyz as an orchestrator asks it: an answer that takes longer fails (ReadTimeout)."""
    response = httpx.get(f"{gateway.url}/readyz", timeout=PROBE_TIMEOUT_S)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def probe_until(gateway: GatewayProcess, status: int, within: float) -> dict[str, Any]:
    """Probe (every probe answered in time) until /readyz answers ``status``."""
    deadline = time.monotonic() + within
    while True:
        answered, body = probe(gateway)
        if answered == status:
            return body
        assert time.monotonic() < deadline, f"not {status} within {within}s: {body}"
        time.sleep(0.2)


def database_up(gateway: GatewayProcess) -> str:
    """The ehrgw_database_up gauge (development mode serves /metrics on loopback)."""
    scraped = httpx.get(f"{gateway.url}/metrics", timeout=PROBE_TIMEOUT_S).text
    return next(line for line in scraped.splitlines() if line.startswith("ehrgw_database_up "))


def test_readyz_answers_at_once_with_the_database_stalled_and_recovers_by_itself(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    assert probe(gateway) == (200, {"status": "ready"})

    with stalled(database):
        stalled_at = time.monotonic()
        body = probe_until(gateway, 503, within=10)
        noticed_after = time.monotonic() - stalled_at
        assert body["status"] == "unavailable"
        assert "database unreachable" in body["problems"]
        # It stays answered in time, and says the same, for as long as the database is away.
        for _ in range(5):
            assert probe(gateway)[0] == 503
        assert database_up(gateway) == "ehrgw_database_up 0.0"
    continued_at = time.monotonic()
    assert probe_until(gateway, 200, within=15) == {"status": "ready"}
    assert database_up(gateway) == "ehrgw_database_up 1.0"
    print(
        f"/readyz went 503 {noticed_after:.1f}s after the database stalled and 200 "
        f"{time.monotonic() - continued_at:.1f}s after it continued"
    )
    # The database's address and the driver's words stay in the log, not in the answer.
    assert database.url.split("/")[2] not in str(body)
