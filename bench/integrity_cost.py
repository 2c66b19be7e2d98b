"""What verifying one tenant's history and audit log costs per entry, in the storage layer.

    python bench/integrity_cost.py --versions 2000            # time verify_tenant, 5 runs
    python bench/integrity_cost.py --versions 2000 --profile  # and where the time goes

Seeds one Epic tenant through the gateway (``selectEhr``), then ``--versions`` versions through
the storage layer (bench/growth.py ``add_versions``: a history entry and an audit entry each, as
a save writes them), and times ``verify_tenant`` over it in this process: no HTTP, no GraphQL,
only the reads and the checks. The cost per entry is the median run's time (and this process's
CPU time) over the entries it verified. ``--profile`` runs it once more under pyinstrument and
prints the profile.
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

from bench.growth import HISTORY_DATABASE, HISTORY_TENANT, _post, add_versions, gateway  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from ehr_gateway.storage.integrity import verify_tenant  # noqa: E402
from ehr_gateway.storage.secrets import SecretBox  # noqa: E402
from tests.documents import SELECT_EPIC  # noqa: E402


async def verify_runs(url: str, data_dir: Path, runs: int) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    keys = SecretBox.from_data_dir(data_dir).chain
    try:
        db = client[HISTORY_DATABASE]
        found = []
        for _ in range(runs):
            started_at, cpu_at = time.perf_counter(), time.process_time()
            verified = await verify_tenant(db, keys, HISTORY_TENANT)
            seconds, cpu = time.perf_counter() - started_at, time.process_time() - cpu_at
            assert verified.intact, verified
            entries = verified.history.checked + verified.audit.checked
            found.append({"entries": entries, "s": seconds, "cpu_s": cpu})
        return found
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        data_dir = Path(scratch) / "history"
        token = dev_tokens.mint(
            data_dir, tenants=[HISTORY_TENANT], roles=["integrator"], subject="bench"
        )
        with (
            gateway(db.url, data_dir, HISTORY_DATABASE) as (url, _),
            httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
            ) as client,
        ):
            _post(client, {"query": SELECT_EPIC, "variables": {"tenantId": HISTORY_TENANT}})
        asyncio.run(add_versions(db.url, data_dir, args.versions))
        runs = asyncio.run(verify_runs(db.url, data_dir, args.runs))
        middle = sorted(runs, key=lambda run: run["s"])[len(runs) // 2]
        entries = middle["entries"]
        print(
            json.dumps(
                {
                    "versions": args.versions,
                    "entries": entries,
                    "median_s": round(middle["s"], 3),
                    "ms_per_entry": round(middle["s"] * 1000 / entries, 4),
                    "cpu_ms_per_entry": round(middle["cpu_s"] * 1000 / entries, 4),
                    "runs_s": [round(run["s"], 3) for run in runs],
                    "stdev_s": round(statistics.pstdev(run["s"] for run in runs), 3),
                    "load_average_before": list(load_before),
                    "load_average_after": list(os.getloadavg()),
                }
            ),
            flush=True,
        )
        if args.profile:
            from pyinstrument import Profiler

            with Profiler(async_mode="enabled") as profiler:
                asyncio.run(verify_runs(db.url, data_dir, 1))
            print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
