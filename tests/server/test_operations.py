"""What operators see of a running gateway: Prometheus metrics at /metrics, one JSON log line
per event carrying the request's id, and several worker processes on one port."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import READ_VERSION, SELECT_EPIC
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED
from tests.processes import GatewayProcess, TransportWsClient, started_gateway


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(tmp_path_factory.mktemp("operations"), database_url) as process:
        yield process


def post(gateway: GatewayProcess, document: str, request_id: str, **variables: Any) -> Any:
    return httpx.post(
        f"{gateway.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"authorization": f"Bearer {gateway.token}", "x-request-id": request_id},
        timeout=10,
    )


def metrics(gateway: GatewayProcess) -> dict[str, float]:
    """Each sample of /metrics by its name and labels, as the exposition format writes them."""
    response = httpx.get(f"{gateway.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def log_lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    """The JSON objects the gateway has logged (the lines before logging starts are plain)."""
    return [json.loads(line) for line in gateway.printed().splitlines() if line.startswith("{")]


def started_workers(gateway: GatewayProcess) -> int:
    """How many worker processes have finished starting, by their log."""
    return sum(line["message"] == "Application startup complete." for line in log_lines(gateway))


def logged_access_of(gateway: GatewayProcess, *request_ids: str) -> list[dict[str, Any]]:
    """The log, once it has the access line of each request: that line is written after the
    response is sent, so it may follow the response by a moment."""
    deadline = time.monotonic() + 5
    while True:
        lines = log_lines(gateway)
        logged = {line.get("requestId") for line in lines if line["logger"] == "ehr_gateway.access"}
        if set(request_ids) <= logged or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


async def test_metrics_count_requests_per_operation_and_show_the_live_state(
    gateway: GatewayProcess,
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    before = metrics(gateway)
    read_label = 'ehrgw_http_requests_total{operation="query:integrationSettings",status="200"}'
    write_label = 'ehrgw_http_requests_total{operation="mutation:selectEhrProvider",status="200"}'

    post(gateway, SELECT_EPIC, "m-1", tenantId=tenant_id)
    for n in range(3):
        assert post(gateway, READ_VERSION, f"r-{n}", tenantId=tenant_id).json() == {
            "data": {"integrationSettings": {"version": 1}}
        }
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
    await subscriber.next_data("1")
    during = metrics(gateway)
    await subscriber.close()

    assert during[read_label] - before.get(read_label, 0) == 3
    assert during[write_label] - before.get(write_label, 0) == 1
    latency = 'ehrgw_http_request_duration_seconds_count{operation="query:integrationSettings"}'
    assert during[latency] - before.get(latency, 0) == 3
    assert during["ehrgw_subscriptions"] >= 1
    assert during["ehrgw_change_feed_up"] == 1
    assert during["ehrgw_database_up"] == 1
    assert during['ehrgw_database_errors_total{source="request"}'] == 0
    # The first read went to the database; the next two were answered from the response cache.
    hits = 'ehrgw_cache_lookups_total{cache="responses",result="hit"}'
    assert during[hits] - before.get(hits, 0) == 2
    assert during["ehrgw_change_feed_lag_seconds_count"] >= 1


def test_each_log_line_is_a_json_object_naming_the_request(gateway: GatewayProcess) -> None:
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    post(gateway, READ_VERSION, request_id, tenantId="anyone")
    refused_id = f"anon-{uuid.uuid4().hex[:8]}"
    httpx.post(
        f"{gateway.url}/graphql", json={"query": READ_VERSION}, headers={"x-request-id": refused_id}
    )

    lines = logged_access_of(gateway, request_id, refused_id)
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line.get("requestId") == request_id]
    assert [(a["method"], a["path"], a["status"], a["operation"]) for a in access] == [
        ("POST", "/graphql", 200, "query:integrationSettings")
    ]
    assert access[0]["durationMs"] >= 0
    refusal = [line for line in lines if line.get("requestId") == refused_id]
    assert {line["logger"] for line in refusal} == {"ehr_gateway.http", "ehr_gateway.access"}
    assert any("unauthenticated request refused" in line["message"] for line in refusal)
    assert [line["status"] for line in refusal if "status" in line] == [401]


def test_several_workers_serve_one_port_and_stop_cleanly(database_url: str, tmp_path: Path) -> None:
    gateway = GatewayProcess(
        tmp_path,
        "--workers",
        "2",
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"workers_{uuid.uuid4().hex[:8]}",
    )
    try:
        # The gateway answers once one worker is up; on a busy machine the other may still be
        # starting (each has 30 s): wait for both, so that the reads below may reach either.
        deadline = time.monotonic() + 60
        while started_workers(gateway) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        tenant_id = f"t-{uuid.uuid4().hex[:8]}"
        assert post(gateway, SELECT_EPIC, "w-1", tenantId=tenant_id).status_code == 200
        # Every worker (whichever takes the connection) reads what one of them wrote.
        for n in range(10):
            with httpx.Client() as fresh_connection:
                body = fresh_connection.post(
                    f"{gateway.url}/graphql",
                    json={"query": READ_VERSION, "variables": {"tenantId": tenant_id}},
                    headers={"authorization": f"Bearer {gateway.token}"},
                    timeout=10,
                ).json()
            assert body == {"data": {"integrationSettings": {"version": 1}}}, (n, body)
        assert started_workers(gateway) == 2
    finally:
        output = gateway.stop(20)
    assert gateway.exited_by_itself, output[-2000:]
    assert "Traceback" not in output, output
