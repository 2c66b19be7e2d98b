"""/readyz answers anyone who reaches the port: while the database is down it says so in a fixed
text, and the database's address and the driver's error go to the log only."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.processes import GatewayProcess


def test_readiness_does_not_tell_the_database_address(
    database: EmbeddedMongo, tmp_path: Path
) -> None:
    gateway = GatewayProcess(
        tmp_path / "gateway",
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE="readiness",
        EHRGW_DB_TIMEOUT_MS="500",
    )
    try:
        database.stop()
        # Readiness is kept, and refreshed every second: it says so within a few.
        deadline = time.monotonic() + 10
        while (
            "database unreachable"
            not in (response := httpx.get(f"{gateway.url}/readyz", timeout=10)).text
        ):
            assert time.monotonic() < deadline, response.text
            time.sleep(0.1)
        while "database unreachable: " not in gateway.printed():
            assert time.monotonic() < deadline, gateway.printed()
            time.sleep(0.02)
    finally:
        output = gateway.stop(5)

    assert response.status_code == 503
    problems = response.json()["problems"]
    assert "database unreachable" in problems
    assert str(database.port) not in response.text
    assert "127.0.0.1" not in response.text
    assert str(database.port) in output  # the operator still learns which server failed
