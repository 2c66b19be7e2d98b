"""Request metrics are kept as plain numbers (server.metrics) and read exactly as the
prometheus_client Counter and Histogram they replace would read for the same requests: the same
names, help, labels, series order, bucket bounds, counts and sums, in the same exposition text,
whatever a client put in the operation label."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from ehr_gateway.server.metrics import LATENCY_BUCKETS, GatewayMetrics

OPERATIONS = ["query:integrationSettings", "mutation:updateEhrSettings", 'odd"\n\\label', "-"]
STATUSES = [200, 400, 401, 413, 0]
# On a bound, just past one, past every bound, and zero: where a bucket could be missed.
EDGES = [*LATENCY_BUCKETS, *(b * 1.0000001 for b in LATENCY_BUCKETS), 11.0, 0.0]


def test_request_metrics_read_as_the_client_library_writes_them() -> None:
    metrics = GatewayMetrics()
    reference = CollectorRegistry(auto_describe=False)
    requests = Counter(
        "ehrgw_http_requests",
        "GraphQL HTTP requests, by operation (type and root fields) and status.",
        ["operation", "status"],
        registry=reference,
    )
    latency = Histogram(
        "ehrgw_http_request_duration_seconds",
        "GraphQL HTTP request latency, by operation.",
        ["operation"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    chosen = random.Random(16)
    for n in range(5000):
        operation, status = chosen.choice(OPERATIONS), chosen.choice(STATUSES)
        seconds = chosen.choice(EDGES) if n % 5 == 0 else chosen.expovariate(200)
        metrics.request(operation, status, seconds)
        requests.labels(operation, str(status)).inc()
        latency.labels(operation).observe(seconds)
    expected = generate_latest(reference).decode()
    rendered = metrics.render().decode()
    # The request families come first, as their metrics were registered first.
    assert rendered.startswith(expected)
