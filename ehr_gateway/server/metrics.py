"""Prometheus metrics, served at /metrics: requests and their latency per operation, open
subscriptions, the change feed's state and lag, database errors, the read caches, and refused
attempts.

Request metrics are recorded as requests finish; the rest is read from the live objects when
scraped. Each process has its own registry: with ``serve --workers N`` every worker answers for
itself, so scrape each worker (or run one worker per container, as behind a load balancer).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Settings reads answer in well under a millisecond from the cache and in milliseconds from the
# database; integration mutations call out and can take seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class LiveState:
    """Readers of what is measured at scrape time."""

    subscriptions: Callable[[], int]
    feed_streams: Callable[[], int]
    feed_running: Callable[[], bool]
    feed_reconnects: Callable[[], int]
    request_database_errors: Callable[[], int]
    caches: Callable[[], dict[str, tuple[int, int, int]]]  # name: (entries, hits, misses)
    denials: Callable[[], dict[str, int]]  # kind: refusals
    coalesced_denials: Callable[[], int]
    history_pages: Callable[[], int]
    # The settings repository (storage.repository), for its write failures and repairs.
    repository: Callable[[], Any] = lambda: None
    database_up: Callable[[], bool] = lambda: False


class _LiveCollector(Collector):
    def __init__(self, state: LiveState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        state = self._state
        yield GaugeMetricFamily(
            "ehrgw_subscriptions", "Open subscription operations.", value=state.subscriptions()
        )
        yield GaugeMetricFamily(
            "ehrgw_change_feed_streams",
            "Streams the change feed serves (one per group of identical subscriptions).",
            value=state.feed_streams(),
        )
        yield GaugeMetricFamily(
            "ehrgw_change_feed_up",
            "1 while the change feed follows the database, else 0.",
            value=1 if state.feed_running() else 0,
        )
        yield GaugeMetricFamily(
            "ehrgw_database_up",
            "1 while the database answers this process's pings (as /readyz reports), else 0.",
            value=1 if state.database_up() else 0,
        )
        errors = CounterMetricFamily(
            "ehrgw_database_errors",
            "Times the database could not be reached: by a request, or by the change feed.",
            labels=["source"],
        )
        errors.add_metric(["request"], state.request_database_errors())
        errors.add_metric(["change_feed"], state.feed_reconnects())
        yield errors
        yield CounterMetricFamily(
            "ehrgw_subscription_history_pages",
            "Pages of history subscriptions have read (replays from sinceVersion, and gaps).",
            value=state.history_pages(),
        )
        entries = GaugeMetricFamily(
            "ehrgw_cache_entries", "Entries in a read cache.", labels=["cache"]
        )
        lookups = CounterMetricFamily(
            "ehrgw_cache_lookups", "Read cache lookups.", labels=["cache", "result"]
        )
        for name, (size, hits, misses) in state.caches().items():
            entries.add_metric([name], size)
            lookups.add_metric([name, "hit"], hits)
            lookups.add_metric([name, "miss"], misses)
        yield entries
        yield lookups
        denials = CounterMetricFamily(
            "ehrgw_denials",
            "Refused attempts: on a tenant the caller does not belong to (other_tenant, never in "
            "that tenant's audit log), or for a permission the caller lacks (permission).",
            labels=["kind"],
        )
        for kind, count in state.denials().items():
            denials.add_metric([kind], count)
        yield denials
        yield CounterMetricFamily(
            "ehrgw_denials_coalesced",
            "Permission refusals left out of the tenant's audit log as repeats of one audited "
            "in the last minute (same subject, operation and missing permission).",
            value=state.coalesced_denials(),
        )
        repository = state.repository()
        yield CounterMetricFamily(
            "ehrgw_writes_refused_for_space",
            "Writes (and roll-forwards of unfinished ones) the database refused for lack of "
            "space. Writes fail until an operator frees space.",
            value=repository.write_failures.refused_for_space if repository else 0,
        )
        yield CounterMetricFamily(
            "ehrgw_versions_rolled_forward",
            "Versions stored in history whose write did not finish (the database refused or "
            "went away after the commit point, or its writer died) that this process finished.",
            value=repository.repairs.rolled_forward if repository else 0,
        )
        yield CounterMetricFamily(
            "ehrgw_history_entries_tampered",
            "History entries that did not verify (hash, MAC or link to the version before) when "
            "this process was to roll them forward or answer them for an idempotency key: never "
            "applied nor audited; writes to their tenant are refused.",
            value=repository.tampered_entries if repository else 0,
        )


class _Latency:
    """One operation's latency histogram: observations per bucket (not cumulative; the last
    past every bound) and their sum."""

    __slots__ = ("buckets", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0


class _Requests(Collector):
    """Requests by operation and status, and their latency by operation: the series a
    prometheus_client Counter and Histogram with these labels would show, with the same names,
    help, labels, order and values, kept as plain numbers. Recording a request is then a
    counter increment and a bisection, where the client's metric objects took a lock per value
    (a sum and a bucket, a count) on every request, a tenth of a cached read. Requests are
    recorded and scraped on the event loop."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}  # in the order first seen, as labels()
        self._latency: dict[str, _Latency] = {}

    def record(self, operation: str, status: int, seconds: float) -> None:
        key = (operation, status)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        latency = self._latency.get(operation)
        if latency is None:
            latency = self._latency[operation] = _Latency()
        # The first bucket whose bound the value does not exceed, as Histogram.observe finds it.
        latency.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.sum += seconds

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "ehrgw_http_requests",
            "GraphQL HTTP requests, by operation (type and root fields) and status.",
            labels=["operation", "status"],
        )
        for (operation, status), count in list(self._counts.items()):
            requests.add_metric([operation, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "ehrgw_http_request_duration_seconds",
            "GraphQL HTTP request latency, by operation.",
            labels=["operation"],
        )
        bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
        for operation, observed in list(self._latency.items()):
            cumulative = list(itertools.accumulate(observed.buckets))
            latency.add_metric(
                [operation], list(zip(bounds, cumulative, strict=True)), observed.sum
            )
        yield latency


class GatewayMetrics:
    def __init__(self) -> None:
        # The *_created series (when each labelled series was first seen) say nothing useful here.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = _Requests()
        self.registry.register(self._requests)
        # The process's own figures, as any Python exporter gives them: CPU time, memory and
        # open files, and the garbage collector's collections and what they found, per
        # generation (python_gc_*), which is where a process that allocates too much shows.
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._feed_lag = Histogram(
            "ehrgw_change_feed_lag_seconds",
            "From a version's commit (its changedAt, by the writer's clock) to this replica's "
            "change feed publishing it.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )

    def watch(self, state: LiveState) -> None:
        self.registry.register(_LiveCollector(state))

    def request(self, operation: str, status: int, seconds: float) -> None:
        self._requests.record(operation, status, seconds)

    def feed_lag(self, seconds: float) -> None:
        self._feed_lag.observe(max(seconds, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
