"""Prometheus metrics, served at /metrics: requests and their latency per operation, open
subscriptions, the change feed's state and lag, database errors, the read caches, and refused
attempts.

Request metrics are recorded as requests finish; the rest is read from the live objects when
scraped. Each process has its own registry: with ``serve --workers N`` every worker answers for
itself, so scrape each worker (or run one worker per container, as behind a load balancer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


class GatewayMetrics:
    def __init__(self) -> None:
        # The *_created series (when each labelled series was first seen) say nothing useful here.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            "ehrgw_http_requests",
            "GraphQL HTTP requests, by operation (type and root fields) and status.",
            ["operation", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "ehrgw_http_request_duration_seconds",
            "GraphQL HTTP request latency, by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Each (operation, status)'s labelled series, looked up once: ``labels`` checks and
        # locks on every call, half of what recording a request cost. As bounded as the labels.
        self._series: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
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
        series = self._series.get((operation, status))
        if series is None:
            series = self._series[(operation, status)] = (
                self._requests.labels(operation, str(status)),
                self._latency.labels(operation),
            )
        series[0].inc()
        series[1].observe(seconds)

    def feed_lag(self, seconds: float) -> None:
        self._feed_lag.observe(max(seconds, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
