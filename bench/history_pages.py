"""History and audit-log pages as one tenant's history grows: the cost of a page should follow
the page (20 entries), not the history. The versions are seeded as the gateway stores them,
chained and sealed with its keys (bench/chained_history.py: about a millisecond a version, where
a save through the storage layer costs about 15 ms), and the gateway started on them must serve
them without errors (``check_served``) before anything is timed.

    python bench/history_pages.py                       # 1,000, 10,000 and 100,000 versions
    python bench/history_pages.py --sizes 1000 10000 --requests 50 --out /tmp/pages.json

Per size, one request at a time through a gateway process started afresh (response cache off):
``settingsHistory``'s newest page and a page 95% of the way back, ``auditLog``'s newest page and
a page 95% of the way back; for each, latency, the gateway's CPU per request and the embedded
database server's CPU per request (from /proc: hardly changed by a busy machine). Ceiling beside
them: the driver's own find of the newest 20 history entries. A history page verifies each
entry it serves (its MAC and its link to the one before); an audit-log page does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chained_history import AUDIT_LOG, check_served, seed_versions  # noqa: E402
from bench.common import (  # noqa: E402
    cpu_seconds,
    machine,
    summarize,
    time_newest_history_find,
)
from bench.growth import gateway, repeat  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from tests.documents import SETTINGS_HISTORY  # noqa: E402

DATABASE = "bench_history_pages"
TENANT = "pages-history"
# Other tenants' entries beside the measured one: a page must not read them either.
NEIGHBOURS = 1


def grow(url: str, data_dir: Path, tenants: list[str], size: int) -> float:
    """Each of ``tenants`` seeded up to ``size`` versions; the seconds it took."""
    started_at = time.perf_counter()
    for tenant_id in tenants:
        asyncio.run(seed_versions(url, DATABASE, data_dir, tenant_id, size))
    return time.perf_counter() - started_at


def measure(
    client: httpx.Client,
    bodies: Iterator[dict[str, Any]],
    requests: int,
    pids: dict[str, int],
    check: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """``requests`` POSTs one at a time after a warm-up: latency, CPU per request of each pid,
    and how many were answered with an error (a page past the database deadline is a finding,
    reported rather than raised)."""
    for _ in range(3):
        client.post("/graphql", json=next(bodies))
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    latencies = []
    errors: list[str] = []
    for _ in range(requests):
        body = next(bodies)
        started_at = time.perf_counter()
        answer = client.post("/graphql", json=body).json()
        latencies.append(time.perf_counter() - started_at)
        if answer.get("errors"):
            errors.append(answer["errors"][0].get("extensions", {}).get("code", "?"))
        else:
            check(answer)
    row: dict[str, Any] = {**summarize(latencies, "requests"), "errors": errors}
    for name, pid in pids.items():
        row[f"{name}_cpu_ms"] = round((cpu_seconds(pid) - before[name]) * 1000 / requests, 2)
    return row


def _full_page(field: str, items: str) -> Callable[[dict[str, Any]], None]:
    def check(answer: dict[str, Any]) -> None:
        page = answer["data"][field]
        assert len(page[items]) == 20 and page["hasMore"], page

    return check


def run(sizes: list[int], requests: int) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "history and audit pages as one tenant's history grows",
        "command": " ".join(["python", "bench/history_pages.py", *sys.argv[1:]]),
        "machine": machine(),
        "load_average_before": list(os.getloadavg()),
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        data_dir = Path(scratch) / "gateway"
        token = dev_tokens.mint(data_dir, tenants=[TENANT], roles=["integrator"], subject="bench")
        neighbours = [f"pages-neighbour-{n}" for n in range(NEIGHBOURS)]
        for size in sorted(sizes):
            seed_s = grow(db.url, data_dir, [TENANT, *neighbours], size)
            deep_version = max(25, int(size * 0.05))
            deep_id = f"{TENANT}:v{deep_version:012d}"
            variables = {"tenantId": TENANT}
            row: dict[str, Any] = {
                "versions": size,
                "tenants_seeded": 1 + NEIGHBOURS,
                "seed_s": round(seed_s, 1),
                "load_average": list(os.getloadavg()),
            }
            with gateway(db.url, data_dir, DATABASE) as (url, pid):
                assert db.pid is not None
                pids = {"gateway": pid, "database": db.pid}
                headers = {"authorization": f"Bearer {token}"}
                with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
                    check_served(client, TENANT, size)
                    history = _full_page("settingsHistory", "versions")
                    audit = _full_page("auditLog", "entries")
                    cases = {
                        "history_newest_page": (SETTINGS_HISTORY, variables, history),
                        "history_deep_page": (
                            SETTINGS_HISTORY, {**variables, "before": deep_version}, history
                        ),
                        "audit_newest_page": (AUDIT_LOG, variables, audit),
                        "audit_deep_page": (AUDIT_LOG, {**variables, "before": deep_id}, audit),
                    }  # fmt: skip
                    for name, (query, values, check) in cases.items():
                        body = {"query": query, "variables": values}
                        row[name] = measure(client, repeat(body), requests, pids, check)
            row["ceiling_driver_find_20"] = summarize(
                asyncio.run(time_newest_history_find(db.url, DATABASE, TENANT, requests))
            )
            print(json.dumps(row), flush=True)
            results["rows"].append(row)
    results["load_average_after"] = list(os.getloadavg())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--requests", type=int, default=50, help="per case and size")
    parser.add_argument("--out", type=Path, required=True, help="where the results go (JSON)")
    args = parser.parse_args()
    results = run(args.sizes, args.requests)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
