"""SIGTERM, as an orchestrator stops a replica: requests already in flight finish with their
normal answer, new connections are refused meanwhile, and the process exits 0 within its grace
period. (Open subscriptions are closed: see test_subscription_protocol.)"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_PROVIDER
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback

TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest { url reachable ok fhirVersion failure { code } }
  }
}
"""
CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}
SHUTDOWN_TIMEOUT_S = 10
IN_FLIGHT = 3
# How long requests are kept in flight after SIGTERM: long enough that a gateway which cut them
# off, or stopped waiting for them, would be caught doing so.
HELD_AFTER_SIGTERM_S = 1.5


class SlowEhr:
    """A FHIR server whose metadata answers only once the test releases it, so that the
    gateway's requests testing the connection stay in flight as long as the test needs."""

    def __init__(self) -> None:
        self.arrived = 0
        self.released = asyncio.Event()

    async def metadata(self, request: Request) -> Response:
        self.arrived += 1
        await asyncio.wait_for(self.released.wait(), 60)  # never an endless hang
        return JSONResponse(CAPABILITY, media_type="application/fhir+json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/fhir/metadata", self.metadata)])


@pytest.fixture
async def slow_ehr() -> AsyncIterator[tuple[SlowEhr, str]]:
    ehr = SlowEhr()
    async with serve_on_loopback(ehr.app()) as url:
        yield ehr, url
        ehr.released.set()  # let the server stop even when the test failed first


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway allowed to call servers on this machine over plain http, as in local testing."""
    running = GatewayProcess(
        tmp_path,
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"shutdown_{uuid.uuid4().hex[:8]}",
        EHRGW_ALLOW_INSECURE_HTTP="true",
        EHRGW_OUTBOUND_ALLOW_PRIVATE="true",
        EHRGW_OUTBOUND_TIMEOUT_S="60",
        EHRGW_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_TIMEOUT_S),
    )
    yield running
    running.stop(5)


async def wait_until_refused(url: str, within: float) -> None:
    """Until a new connection to ``url`` is refused, or closed unanswered: one accepted as the
    listening socket closed is dropped without a response."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                await client.get(f"{url}/healthz", headers={"connection": "close"})
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                return
            assert time.monotonic() < deadline, f"still accepting connections after {within}s"
            await asyncio.sleep(0.05)


async def test_requests_in_flight_at_sigterm_finish_and_the_process_exits_cleanly(
    gateway: GatewayProcess, slow_ehr: tuple[SlowEhr, str]
) -> None:
    ehr, ehr_url = slow_ehr
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    gateway.graphql(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    gateway.graphql(
        CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id,
        connection={"name": "EHR", "baseUrl": f"{ehr_url}/fhir", "environment": "NON_PRODUCTION"},
    )  # fmt: skip

    async def test_connection() -> httpx.Response:
        # A client of its own each: one connection per request, as separate callers have.
        async with httpx.AsyncClient(timeout=SHUTDOWN_TIMEOUT_S + 30) as client:
            return await client.post(
                f"{gateway.url}/graphql",
                json={"query": TEST_CONNECTION, "variables": {"tenantId": tenant_id}},
                headers={"authorization": f"Bearer {gateway.token}"},
            )

    in_flight = [asyncio.create_task(test_connection()) for _ in range(IN_FLIGHT)]
    deadline = time.monotonic() + 10
    while ehr.arrived < IN_FLIGHT:
        assert time.monotonic() < deadline, f"{ehr.arrived} of {IN_FLIGHT} requests arrived"
        await asyncio.sleep(0.02)

    gateway.process.send_signal(signal.SIGTERM)
    signalled_at = time.monotonic()
    await wait_until_refused(gateway.url, within=5)
    await asyncio.sleep(max(0.0, signalled_at + HELD_AFTER_SIGTERM_S - time.monotonic()))
    assert gateway.process.poll() is None, "exited with requests in flight"
    cut_off = [request.result() for request in in_flight if request.done()]
    assert cut_off == [], "answered before the EHR was"
    ehr.released.set()

    responses = await asyncio.gather(*in_flight)
    try:
        # Waited for, not stopped again: a second SIGTERM would tell the server to hurry.
        await asyncio.to_thread(gateway.process.wait, SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {SHUTDOWN_TIMEOUT_S} s after SIGTERM")
    exited_after = time.monotonic() - signalled_at
    output = gateway.stop()

    expected: dict[str, Any] = {
        "testExternalGatewayConnection": {
            "__typename": "GatewayConnectionTest",
            "url": f"{ehr_url}/fhir/metadata",
            "reachable": True,
            "ok": True,
            "fhirVersion": "4.0.1",
            "failure": None,
        }
    }
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json() == {"data": expected}
    assert exited_after < SHUTDOWN_TIMEOUT_S
    assert gateway.process.returncode == 0, output[-2000:]
    assert "Traceback" not in output, output[-5000:]
