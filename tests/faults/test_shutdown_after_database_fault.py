"""A gateway asked to stop (SIGTERM) stops within EHRGW_SHUTDOWN_TIMEOUT_S even when its
database is stalled or gone: the change feed's read and the driver's goodbye to the server used
to hold it for 7 to 13 seconds, past what an orchestrator waits before it kills."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ehr_gateway.storage.embedded import PID_FILE, EmbeddedMongo
from tests.faults._database import stalled
from tests.processes import GatewayProcess

SHUTDOWN_TIMEOUT_S = 2
# The timeout, and a margin for the interpreter's exit on a busy machine.
EXIT_BOUND_S = SHUTDOWN_TIMEOUT_S + 3
SELECT_ELLKAY = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: ELLKAY) { __typename }
}
"""


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        tmp_path / "gateway",
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE="shutdown",
        EHRGW_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_TIMEOUT_S),
    )
    yield gateway
    gateway.kill()


def wait_until_unready(gateway: GatewayProcess, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while httpx.get(f"{gateway.url}/readyz", timeout=30).status_code != 503:
        assert time.monotonic() < deadline, "the gateway never noticed the fault"
        time.sleep(0.2)


def stop_and_time(gateway: GatewayProcess) -> float:
    started = time.monotonic()
    output = gateway.stop(within=30)  # killed only if it does not exit by itself by then
    took = time.monotonic() - started
    assert gateway.exited_by_itself, output[-3000:]
    assert gateway.process.returncode == 0, output[-3000:]
    return took


def stopped_database(database: EmbeddedMongo, gateway: GatewayProcess) -> float:
    with stalled(database):
        wait_until_unready(gateway)
        return stop_and_time(gateway)


def killed_database(database: EmbeddedMongo, gateway: GatewayProcess) -> float:
    database.kill()
    wait_until_unready(gateway)
    return stop_and_time(gateway)


@pytest.mark.parametrize("fault", [stopped_database, killed_database], ids=lambda f: f.__name__)
def test_sigterm_stops_the_gateway_within_its_shutdown_timeout_after_a_database_fault(
    database: EmbeddedMongo,
    gateway: GatewayProcess,
    fault: Callable[[EmbeddedMongo, GatewayProcess], float],
) -> None:
    # Connections in the driver's pool and the change feed's open read, as in service.
    gateway.graphql(SELECT_ELLKAY, tenantId=f"t-{uuid.uuid4().hex[:8]}")

    took = fault(database, gateway)

    print(f"{fault.__name__}: SIGTERM to exit in {took:.1f}s (timeout {SHUTDOWN_TIMEOUT_S}s)")
    assert took < EXIT_BOUND_S


@pytest.fixture
def embedded_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway that runs its own embedded database, as `ehr-gateway serve` does by default."""
    gateway = GatewayProcess(tmp_path, EHRGW_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_TIMEOUT_S))
    pid = int((tmp_path / PID_FILE).read_text().strip())
    yield gateway
    gateway.kill()
    # The stalled child is this test's doing: let it go and end it.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_gateway_within_its_shutdown_timeout_with_its_own_database_stalled(
    embedded_gateway: GatewayProcess,
) -> None:
    embedded_gateway.graphql(SELECT_ELLKAY, tenantId=f"t-{uuid.uuid4().hex[:8]}")
    pid = int((embedded_gateway.data_dir / PID_FILE).read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until_unready(embedded_gateway)
        took = stop_and_time(embedded_gateway)
    finally:
        with contextlib.suppress(ProcessLookupError):  # ended with its gateway, as it should
            os.kill(pid, signal.SIGCONT)
    print(f"embedded database stalled: SIGTERM to exit in {took:.1f}s")
    assert took < EXIT_BOUND_S
