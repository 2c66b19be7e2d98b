"""How cost grows with the work: per-request cost of reads, dashboards and history as tenants
(10 → 100,000) and one tenant's versions (10 → 100,000) grow, and delivery time as subscribers
grow (100 → 10,000), each beside a ceiling measured at the same size in the same run.

    python bench/growth.py                                  # every dimension, full sizes
    python bench/growth.py --tenants 10 100 1000 --history 10 100 --subscribers 100 1000

Starts its own embedded database and gateway processes (``ehr-gateway serve``, development
mode, response cache off so every read is executed). At each size the gateway is started afresh
on the grown data, so what it loads at start (the Epic gateway ids it keeps in memory) counts in
its memory, and measured with one request at a time over one keep-alive connection, after a
warm-up:

- **tenants**: copies of the tenant directory benchmark's six template tenants (see
  bench/tenants_query.py), inserted straight into the settings collection. Per size: the admin
  page's read of a random tenant's settings; the ``tenants`` query's first page and a page 95%
  of the way through; the gateway's resident memory after start and after the reads. Ceiling:
  the driver's find of the same tenant's document and of the same page.
- **history**: one Epic tenant whose versions are seeded between gateway runs as the gateway
  stores them, chained and sealed with its keys (bench/chained_history.py), and which the
  gateway must then serve without errors. Per size: a save (``updatePatientRestriction`` with
  ``expectedVersion``), the newest page of ``settingsHistory``, a page 95% of the way back, the
  newest page of ``auditLog``, and ``auditIntegrity`` walked to the end in calls of at most
  VERIFY_PAGE_MAX entries (it reads every entry by design: linear), each also with the
  database server's CPU. Ceiling: the driver's find of the newest 20 history entries.
- **subscribers**: ``bench/subscribers.py --shape 1x100``, ``10x100``, ``100x100`` (100, 1,000
  and 10,000 subscribers of one tenant on connections of 100), each with its own bare WebSocket
  ceiling; the figure is commit → delivery p99, and p99 per 1,000 subscribers.

The cost per request is the gateway's CPU time per request (from /proc: hardly changed by a busy
machine, unlike latency) and the latency p50. A cost per request that stays flat as the work
grows is linear work in all; one that climbs is worse than linear, and is named in the output.
Writes bench/results/growth.json and growth.png.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chained_history import check_served, seed_versions  # noqa: E402
from bench.common import (  # noqa: E402
    cpu_seconds,
    machine,
    started,
    summarize,
    time_newest_history_find,
    wait_http,
)
from bench.tenants_query import (  # noqa: E402
    DATABASE,
    PAGE,
    TENANTS_QUERY,
    seed,
    time_driver,
    write_templates,
)
from ehr_gateway.resolvers.audit import VERIFY_PAGE_MAX  # noqa: E402
from ehr_gateway.resolvers.tenant_directory import encode_cursor  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.directory import BY_ID  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo, free_port  # noqa: E402
from ehr_gateway.storage.repository import SETTINGS  # noqa: E402
from ehr_gateway.storage.secrets import SecretBox  # noqa: E402
from tests.documents import (  # noqa: E402
    INTEGRATION_SETTINGS,
    SELECT_EPIC,
    SETTINGS_HISTORY,
    UPDATE_PATIENT_RESTRICTION,
)

RESULTS = ROOT / "bench" / "results"
HISTORY_DATABASE = "bench_growth_history"
HISTORY_TENANT = "growth-history"
AUDIT_LOG = """
query AuditLog($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 20) {
    entries { id at subject operation outcome version requestId }
    hasMore
  }
}
"""
AUDIT_INTEGRITY = """
query AuditIntegrity($tenantId: ID!, $after: String) {
  auditIntegrity(tenantId: $tenantId, after: $after) {
    intact complete nextAfter checkedEntries
    history { intact checkedEntries }
    auditLog { intact checkedEntries }
  }
}
"""
# Worse than linear: the cost of one request at the largest size over its cost at the smallest.
CLIMB_LIMIT = 2.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def gateway(db_url: str, data_dir: Path, database: str) -> Iterator[tuple[str, int]]:
    """A gateway on ``database``, response cache off; its URL and pid."""
    port = free_port()
    with started(
        [sys.executable, "-m", "ehr_gateway.server.cli", "serve"],
        EHRGW_MONGODB_URL=db_url, EHRGW_DATA_DIR=str(data_dir), EHRGW_PORT=str(port),
        EHRGW_DATABASE=database, EHRGW_RESPONSE_CACHE="false", EHRGW_ACCESS_LOG="false",
    ) as process:  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", lambda body: body.get("status") == "ready", within=300)
        yield url, process.pid


def measure(
    client: httpx.Client,
    bodies: Iterator[dict[str, Any]],
    requests: int,
    pid: int,
    db_pid: int | None = None,
) -> dict[str, Any]:
    """``requests`` POSTs, one at a time, of the bodies ``bodies`` yields: latency and the
    gateway's CPU per request (and the database server's, given its pid)."""
    for _ in range(10):  # warm-up
        _post(client, next(bodies))
    latencies = []
    cpu_before = cpu_seconds(pid)
    db_before = 0.0 if db_pid is None else cpu_seconds(db_pid)
    for _ in range(requests):
        body = next(bodies)
        started_at = time.perf_counter()
        _post(client, body)
        latencies.append(time.perf_counter() - started_at)
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / requests
    row = {**summarize(latencies, "requests"), "gateway_cpu_ms": round(cpu_ms, 2)}
    if db_pid is not None:
        row["database_cpu_ms"] = round((cpu_seconds(db_pid) - db_before) * 1000 / requests, 2)
    return row


def _post(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.post("/graphql", json=body).json()
    assert not answer.get("errors"), answer
    return answer


def repeat(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        yield body


async def time_find_one(url: str, tenant_ids: list[str], requests: int) -> list[float]:
    """The ceiling of a read: the driver's find of the tenant's document."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    settings = client[DATABASE][SETTINGS]
    try:
        latencies = []
        for n in range(10 + requests):
            started_at = time.perf_counter()
            document = await settings.find_one({"_id": random.choice(tenant_ids)})
            if n >= 10:
                latencies.append(time.perf_counter() - started_at)
            assert document is not None
        return latencies
    finally:
        await client.close()


def _templates_written(db: EmbeddedMongo, data_dir: Path) -> dict[str, str]:
    """The tenants the seeds copy, written by a gateway; the bench's headers."""
    token = dev_tokens.mint(data_dir, tenants=["*"], roles=["integrator"], subject="bench")
    headers = {"authorization": f"Bearer {token}"}
    with (
        gateway(db.url, data_dir, DATABASE) as (url, _),
        httpx.Client(base_url=url, headers=headers, timeout=60) as client,
    ):
        write_templates(client)
    return headers


def seed_tenants(db: EmbeddedMongo, scratch: Path, size: int) -> None:
    """``size`` tenants, as grow_tenants seeds them, for memory_at_budget alone."""
    data_dir = scratch / "tenants"
    _templates_written(db, data_dir)
    asyncio.run(seed(db.url, size, SecretBox.from_data_dir(data_dir).chain, first=0))


def grow_tenants(db: EmbeddedMongo, scratch: Path, sizes: list[int], requests: int) -> list[Any]:
    data_dir = scratch / "tenants"
    headers = _templates_written(db, data_dir)
    rows: list[dict[str, Any]] = []
    seeded = 0
    for size in sizes:
        asyncio.run(seed(db.url, size, SecretBox.from_data_dir(data_dir).chain, first=seeded))
        seeded = size
        tenant_ids = [f"tenant-{n:06d}" for n in range(size)]
        deep_id = f"tenant-{int(size * 0.95):06d}"
        with gateway(db.url, data_dir, DATABASE) as (url, pid):
            row: dict[str, Any] = {"tenants": size, "rss_after_start_mib": rss_mib(pid)}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                row["read"] = measure(
                    client,
                    (
                        {"query": INTEGRATION_SETTINGS,
                         "variables": {"tenantId": random.choice(tenant_ids)}}
                        for _ in itertools.count()
                    ),
                    requests,
                    pid,
                )  # fmt: skip
                row["first_page"] = measure(
                    client,
                    repeat({"query": TENANTS_QUERY, "variables": {"first": PAGE}}),
                    requests,
                    pid,
                )
                deep = {"first": PAGE, "after": encode_cursor(BY_ID, deep_id)}
                row["deep_page"] = measure(
                    client, repeat({"query": TENANTS_QUERY, "variables": deep}), requests, pid
                )
            row["rss_after_reads_mib"] = rss_mib(pid)
        row["ceiling_read"] = summarize(asyncio.run(time_find_one(db.url, tenant_ids, requests)))
        row["ceiling_first_page"] = summarize(
            asyncio.run(time_driver(db.url, {"first": PAGE}, requests))
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


async def read_many(url: str, token: str, tenant_ids: list[str], concurrency: int) -> int:
    """Read each tenant's settings once, ``concurrency`` at a time; how many answered."""
    headers = {"authorization": f"Bearer {token}"}
    queue = list(tenant_ids)
    answered = 0

    async def reader(client: httpx.AsyncClient) -> None:
        nonlocal answered
        while queue:
            tenant_id = queue.pop()
            body = {"query": INTEGRATION_SETTINGS, "variables": {"tenantId": tenant_id}}
            answer = (await client.post("/graphql", json=body)).json()
            assert not answer.get("errors"), answer
            answered += 1

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(reader(client) for _ in range(concurrency)))
    return answered


def cache_entries(url: str) -> dict[str, float]:
    """ehrgw_cache_entries from the gateway's /metrics, by cache."""
    entries = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("ehrgw_cache_entries{"):
            name = line.split('cache="', 1)[1].split('"', 1)[0]
            entries[name] = float(line.rsplit(" ", 1)[1])
    return entries


def memory_at_budget(db: EmbeddedMongo, scratch: Path, tenants: int, reads: int) -> dict[str, Any]:
    """The gateway's memory over ``tenants`` tenants after reading ``reads`` distinct ones with
    the response cache on: the settings cache full (10,000 tenants) and the response cache at
    its 64 MiB budget once the answers read outgrow it."""
    data_dir = scratch / "tenants"
    token = dev_tokens.mint(data_dir, tenants=["*"], roles=["integrator"], subject="bench")
    port = free_port()
    with started(
        [sys.executable, "-m", "ehr_gateway.server.cli", "serve"],
        EHRGW_MONGODB_URL=db.url, EHRGW_DATA_DIR=str(data_dir), EHRGW_PORT=str(port),
        EHRGW_DATABASE=DATABASE, EHRGW_ACCESS_LOG="false",
    ) as process:  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", lambda body: body.get("status") == "ready", within=300)
        idle = rss_mib(process.pid)
        ids = [f"tenant-{n:06d}" for n in random.sample(range(tenants), min(reads, tenants))]
        started_at = time.perf_counter()
        answered = asyncio.run(read_many(url, token, ids, concurrency=8))
        row = {
            "tenants": tenants,
            "distinct_tenants_read": answered,
            "seconds": round(time.perf_counter() - started_at, 1),
            "rss_idle_mib": idle,
            "rss_after_reads_mib": rss_mib(process.pid),
            "cache_entries": cache_entries(url),
            "target_mib": 300,
        }
    print(json.dumps(row), flush=True)
    return row


def grow_history(db: EmbeddedMongo, scratch: Path, sizes: list[int], requests: int) -> list[Any]:
    data_dir = scratch / "history"
    token = dev_tokens.mint(
        data_dir, tenants=[HISTORY_TENANT], roles=["integrator"], subject="bench"
    )
    headers = {"authorization": f"Bearer {token}"}
    variables = {"tenantId": HISTORY_TENANT}
    with (
        gateway(db.url, data_dir, HISTORY_DATABASE) as (url, _),
        httpx.Client(base_url=url, headers=headers, timeout=60) as client,
    ):
        _post(client, {"query": SELECT_EPIC, "variables": variables})
    rows: list[dict[str, Any]] = []
    for size in sizes:
        seed_at = time.perf_counter()
        versions = asyncio.run(
            seed_versions(db.url, HISTORY_DATABASE, data_dir, HISTORY_TENANT, size)
        )
        seed_s = time.perf_counter() - seed_at
        with gateway(db.url, data_dir, HISTORY_DATABASE) as (url, pid):
            row: dict[str, Any] = {
                "versions": versions,
                "seed_s": round(seed_s, 1),
                "load_average": list(os.getloadavg()),
            }
            with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
                check_served(client, HISTORY_TENANT, versions)
                expressions = (f"age < {n % 90 + 1}" for n in itertools.count())
                pids = (pid, db.pid)
                row["save"] = measure(client, _saves(client, expressions), requests, *pids)
                row["history_first_page"] = measure(
                    client, repeat({"query": SETTINGS_HISTORY, "variables": variables}),
                    requests, *pids,
                )  # fmt: skip
                deep = {**variables, "before": max(21, int(versions * 0.05))}
                row["history_deep_page"] = measure(
                    client, repeat({"query": SETTINGS_HISTORY, "variables": deep}), requests, *pids
                )
                row["audit_first_page"] = measure(
                    client, repeat({"query": AUDIT_LOG, "variables": variables}), requests, *pids
                )
                row.update(verify_in_pages(client, variables, *pids))
        row["ceiling_history_page"] = summarize(
            asyncio.run(
                time_newest_history_find(
                    db.url, HISTORY_DATABASE, HISTORY_TENANT, requests, warm_up=10
                )
            )
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def verify_in_pages(
    client: httpx.Client, variables: dict[str, Any], pid: int, db_pid: int | None = None
) -> dict[str, Any]:
    """``auditIntegrity`` through the API, page after page (``after: nextAfter``) until
    complete: the calls (each bounded to VERIFY_PAGE_MAX entries), the time in all and per call,
    and the gateway's (and database server's) CPU per entry verified and per call."""
    started_at, cpu_before = time.perf_counter(), cpu_seconds(pid)
    db_before = 0.0 if db_pid is None else cpu_seconds(db_pid)
    after: str | None = None
    pages: list[float] = []
    while True:
        page_at = time.perf_counter()
        answer = client.post(
            "/graphql", json={"query": AUDIT_INTEGRITY, "variables": {**variables, "after": after}}
        ).json()
        pages.append(time.perf_counter() - page_at)
        if answer.get("errors"):
            # Reported, not raised: a page past the database deadline is a finding.
            return {"audit_integrity_error": answer["errors"][0]["extensions"]["code"],
                    "audit_integrity_pages": len(pages)}  # fmt: skip
        integrity = answer["data"]["auditIntegrity"]
        after = integrity["nextAfter"]
        if integrity["complete"]:
            break
    assert integrity["intact"], integrity
    seconds = time.perf_counter() - started_at
    gateway_cpu = cpu_seconds(pid) - cpu_before
    entries = integrity["checkedEntries"]
    found: dict[str, Any] = {
        "audit_integrity_s": round(seconds, 2),
        "audit_integrity_entries": entries,
        "audit_integrity_pages": len(pages),
        "audit_integrity_bound_entries_per_call": VERIFY_PAGE_MAX,
        "audit_integrity_call": summarize(pages, "calls"),
        "audit_integrity_page_max_s": round(max(pages), 3),
        "audit_integrity_ms_per_entry": round(seconds * 1000 / entries, 3),
        "audit_integrity_cpu_ms_per_entry": round(gateway_cpu * 1000 / entries, 3),
        "audit_integrity_cpu_ms_per_call": round(gateway_cpu * 1000 / len(pages), 1),
    }
    if db_pid is not None:
        db_cpu = cpu_seconds(db_pid) - db_before
        found["audit_integrity_database_cpu_ms_per_entry"] = round(db_cpu * 1000 / entries, 3)
        found["audit_integrity_database_cpu_ms_per_call"] = round(db_cpu * 1000 / len(pages), 1)
    return found


def _saves(client: httpx.Client, expressions: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Each save on the version the one before stored: it reads the current version first."""
    version = "query V($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }"
    current = _post(client, {"query": version, "variables": {"tenantId": HISTORY_TENANT}})["data"][
        "integrationSettings"
    ]["version"]
    while True:
        yield {
            "query": UPDATE_PATIENT_RESTRICTION,
            "variables": {
                "tenantId": HISTORY_TENANT,
                "expression": next(expressions),
                "expectedVersion": current,
            },
        }
        current += 1


def grow_subscribers(sizes: list[int]) -> list[Any]:
    rows = []
    for size in sizes:
        connections = max(1, size // 100)
        shape = f"{connections}x{min(size, 100)}"
        subprocess.run(
            [sys.executable, "bench/subscribers.py", "--shape", shape], cwd=ROOT, check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        run = json.loads((RESULTS / f"subscribers-{shape}.json").read_text())
        row = {
            "subscribers": size,
            "shape": shape,
            "gateway_p99_ms": run["gateway"]["p99_ms"],
            "ceiling_p99_ms": run.get("ceiling", {}).get("p99_ms"),
            "rss_after_mib": run["gateway"].get("rss_after_mib"),
            "every_change_delivered": run["gateway"]["changes_fully_delivered"]
            == run["gateway"]["changes"],
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def climbs(rows: list[dict[str, Any]], size_key: str, cost_keys: list[str]) -> list[str]:
    """The costs per request that grew more than CLIMB_LIMIT times from the smallest size to the
    largest: worse than linear work in all."""
    found: list[str] = []
    if len(rows) < 2:
        return found
    for key in cost_keys:
        first, last = (
            (rows[0][key], rows[-1][key])
            if key.endswith("_per_entry")  # already a cost per unit of work
            else (rows[0][key]["gateway_cpu_ms"], rows[-1][key]["gateway_cpu_ms"])
        )
        if first > 0 and last / first > CLIMB_LIMIT:
            found.append(
                f"{key}: {first} → {last} ms of gateway CPU per request (or entry) from "
                f"{rows[0][size_key]:,} to {rows[-1][size_key]:,} {size_key}"
            )
    return found


def chart(results: dict[str, Any], path: Path) -> None:
    """Four panels: the gateway's CPU time per request as tenants and one tenant's versions
    grow (what a busy machine hardly changes, so what tells linear from worse), with the
    driver's own find beside it; auditIntegrity's cost per entry verified; commit → delivery
    p99 as subscribers grow, beside the bare WebSocket ceiling."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: render to a file
    import matplotlib.pyplot as plt

    figure, grid = plt.subplots(2, 2, figsize=(13, 9))
    tenants_axis, history_axis, integrity_axis, subscribers_axis = grid.flat
    panels = [
        (tenants_axis, "tenants", "tenants", "tenants", ["read", "first_page", "deep_page"],
         "ceiling_read"),
        (history_axis, "history", "versions", "versions of one tenant",
         ["save", "history_first_page", "history_deep_page", "audit_first_page"],
         "ceiling_history_page"),
    ]  # fmt: skip
    for axis, name, size_key, label, keys, ceiling in panels:
        rows = results.get(name) or []
        axis.set_title(f"{name}: cost per request")
        if not rows:
            axis.text(0.5, 0.5, "not measured", ha="center", transform=axis.transAxes)
            continue
        sizes = [row[size_key] for row in rows]
        for key in keys:
            axis.plot(sizes, [row[key]["gateway_cpu_ms"] for row in rows], marker="o",
                      label=f"{key}: gateway CPU")  # fmt: skip
        axis.plot(
            sizes, [row[ceiling]["p50_ms"] for row in rows], linestyle="--", color="#888",
            label="ceiling: driver find p50 (latency)",
        )  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("ms per request")
        axis.set_ylim(bottom=0)
        axis.legend(fontsize="small", loc="lower left")

    verified = [
        row for row in results.get("history") or [] if "audit_integrity_ms_per_entry" in row
    ]
    integrity_axis.set_title("auditIntegrity: cost per entry verified (linear by design)")
    if verified:
        sizes = [row["versions"] for row in verified]
        integrity_axis.plot(sizes, [row["audit_integrity_ms_per_entry"] for row in verified],
                            marker="s", label="every call: ms per entry")  # fmt: skip
        integrity_axis.plot(
            sizes, [row["audit_integrity_cpu_ms_per_entry"] for row in verified], marker="s",
            linestyle=":", label="gateway CPU ms per entry",
        )  # fmt: skip
        integrity_axis.set_xscale("log")
        integrity_axis.set_ylim(bottom=0)
        integrity_axis.legend(fontsize="small", loc="lower left")
    else:
        integrity_axis.text(
            0.5, 0.5, "not measured", ha="center", transform=integrity_axis.transAxes
        )
    integrity_axis.set_xlabel("versions of one tenant")
    integrity_axis.set_ylabel("ms per entry")

    rows = results.get("subscribers") or []
    subscribers_axis.set_title("subscribers: commit → delivery p99")
    if rows:
        sizes = [row["subscribers"] for row in rows]
        subscribers_axis.plot(sizes, [row["gateway_p99_ms"] for row in rows], marker="o",
                              label="gateway p99")  # fmt: skip
        subscribers_axis.plot(
            sizes, [row["ceiling_p99_ms"] for row in rows], linestyle="--", color="#888",
            label="ceiling: bare WebSocket p99",
        )  # fmt: skip
        subscribers_axis.set_xscale("log")
        subscribers_axis.set_yscale("log")
        subscribers_axis.legend(fontsize="small", loc="upper left")
    else:
        subscribers_axis.text(0.5, 0.5, "not measured", ha="center",
                              transform=subscribers_axis.transAxes)  # fmt: skip
    subscribers_axis.set_xlabel("subscribers of one tenant")
    subscribers_axis.set_ylabel("ms")
    figure.suptitle(f"How cost grows ({results['machine']['cores']} cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="*", default=[10, 100, 1000, 10_000, 100_000])
    parser.add_argument("--history", type=int, nargs="*", default=[10, 100, 1000, 10_000, 100_000])
    parser.add_argument("--subscribers", type=int, nargs="*", default=[100, 1000, 10_000])
    parser.add_argument("--requests", type=int, default=200, help="per case and size")
    parser.add_argument(
        "--memory-reads", type=int, default=40_000,
        help="distinct tenants read, response cache on, at the largest tenant size (0: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--memory-only", action="store_true",
        help="only the memory figure: seed the largest --tenants size and read --memory-reads "
        "of them; every other dimension is carried from the run before",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "growth.json")
    args = parser.parse_args()
    if args.memory_only:
        args.history, args.subscribers = [], []

    results: dict[str, Any] = {
        "benchmark": "how cost grows",
        "command": " ".join(["python", "bench/growth.py", *sys.argv[1:]]),
        "machine": machine(),
        "load_average_before": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        if args.memory_only:
            seed_tenants(db, Path(scratch), max(args.tenants))
            results["memory"] = memory_at_budget(
                db, Path(scratch), max(args.tenants), args.memory_reads
            )
        elif args.tenants:
            results["tenants"] = grow_tenants(
                db, Path(scratch), sorted(args.tenants), args.requests
            )
            if args.memory_reads:
                results["memory"] = memory_at_budget(
                    db, Path(scratch), max(args.tenants), args.memory_reads
                )
        if args.history:
            results["history"] = grow_history(
                db, Path(scratch), sorted(args.history), args.requests
            )
    if args.subscribers:
        results["subscribers"] = grow_subscribers(sorted(args.subscribers))
    results["load_average_after"] = list(os.getloadavg())
    if args.out.exists():
        # A run that skips a dimension keeps that dimension's rows from the run before (and
        # says so), so one chart still shows every dimension.
        earlier = json.loads(args.out.read_text())
        carried_before = {
            row["dimension"]: row for row in earlier.get("carried_from_earlier_run", [])
        }
        for name in ("tenants", "memory", "history", "subscribers"):
            if name not in results and name in earlier:
                results[name] = earlier[name]
                # Where the rows were measured: the run before, or the one it carried them from.
                results.setdefault("carried_from_earlier_run", []).append(
                    carried_before.get(name)
                    or {"dimension": name, "command": earlier.get("command"),
                        "when": earlier.get("machine", {}).get("when")}
                )  # fmt: skip
    results["worse_than_linear"] = climbs(
        results.get("tenants", []), "tenants", ["read", "first_page", "deep_page"]
    ) + climbs(
        results.get("history", []), "versions",
        ["save", "history_first_page", "history_deep_page", "audit_first_page"]
        + (["audit_integrity_cpu_ms_per_entry"]
           if all("audit_integrity_cpu_ms_per_entry" in row for row in results.get("history", []))
           else []),
    )  # fmt: skip
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, args.out.with_suffix(".png"))
    print(json.dumps({k: results[k] for k in ("worse_than_linear", "load_average_after")}))


if __name__ == "__main__":
    main()
