"""What verifying one tenant's history and audit log costs per entry, in the storage layer.

    python bench/integrity_cost.py --versions 2000            # time verify_tenant, 5 runs
    python bench/integrity_cost.py --versions 2000 --profile  # and where the time goes

Seeds one Epic tenant with ``--versions`` versions as the gateway stores them
(bench/chained_history.py: a history entry, an audit entry and the sealed document, chained with
the gateway's keys), checks that a gateway started on them serves them without errors, then
times ``verify_tenant`` over them in this process: no HTTP, no GraphQL, only the reads and the
checks. The cost per entry is the median run's time (and this process's and the database
server's CPU time) over the entries it verified. ``--profile`` runs it once more under
pyinstrument and prints the profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chained_history import check_served, seed_versions  # noqa: E402
from bench.common import cpu_seconds, machine  # noqa: E402
from bench.growth import HISTORY_DATABASE, HISTORY_TENANT, gateway  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from ehr_gateway.storage.integrity import WALK_PAGE, verify_tenant  # noqa: E402
from ehr_gateway.storage.secrets import SecretBox  # noqa: E402


async def verify_runs(
    url: str, data_dir: Path, runs: int, db_pid: int | None = None
) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    keys = SecretBox.from_data_dir(data_dir).chain
    try:
        db = client[HISTORY_DATABASE]
        found = []
        for _ in range(runs):
            db_at = 0.0 if db_pid is None else cpu_seconds(db_pid)
            started_at, cpu_at = time.perf_counter(), time.process_time()
            verified = await verify_tenant(db, keys, HISTORY_TENANT)
            seconds, cpu = time.perf_counter() - started_at, time.process_time() - cpu_at
            db_cpu = 0.0 if db_pid is None else cpu_seconds(db_pid) - db_at
            assert verified.intact, verified
            entries = verified.history.checked + verified.audit.checked
            found.append({"entries": entries, "s": seconds, "cpu_s": cpu, "db_cpu_s": db_cpu})
        return found
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile")
    parser.add_argument("--out", type=Path, help="where the results go too (JSON)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        data_dir = Path(scratch) / "history"
        token = dev_tokens.mint(
            data_dir, tenants=[HISTORY_TENANT], roles=["integrator"], subject="bench"
        )
        versions = asyncio.run(
            seed_versions(db.url, HISTORY_DATABASE, data_dir, HISTORY_TENANT, args.versions)
        )
        with (
            gateway(db.url, data_dir, HISTORY_DATABASE) as (url, _),
            httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=300
            ) as client,
        ):
            check_served(client, HISTORY_TENANT, versions)
        runs = asyncio.run(verify_runs(db.url, data_dir, args.runs, db.pid))
        middle = sorted(runs, key=lambda run: run["s"])[len(runs) // 2]
        entries = middle["entries"]
        results = {
            "benchmark": "verify_tenant's cost per entry, in the storage layer",
            "command": " ".join(["python", "bench/integrity_cost.py", *sys.argv[1:]]),
            "machine": machine(),
            "versions": versions,
            "entries": entries,
            "median_s": round(middle["s"], 3),
            "ms_per_entry": round(middle["s"] * 1000 / entries, 4),
            "cpu_ms_per_entry": round(middle["cpu_s"] * 1000 / entries, 4),
            "database_cpu_ms_per_entry": round(middle["db_cpu_s"] * 1000 / entries, 4),
            "walk_page_entries": WALK_PAGE,
            "runs_s": [round(run["s"], 3) for run in runs],
            "stdev_s": round(statistics.pstdev(run["s"] for run in runs), 3),
            "load_average_before": list(load_before),
            "load_average_after": list(os.getloadavg()),
        }
        print(json.dumps(results), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        if args.profile:
            from pyinstrument import Profiler

            with Profiler(async_mode="enabled") as profiler:
                asyncio.run(verify_runs(db.url, data_dir, 1))
            print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
