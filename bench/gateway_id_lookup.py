"""Gateway id lookup cost: what the unauthenticated base path URL (and resolveExternalGateway)
costs the database for a made-up external gateway id, against its ceiling in the same run:
as many lookups of a settings document by ``_id``.

    python bench/gateway_id_lookup.py                  # 20,000 tenants, 200 lookups each
    python bench/gateway_id_lookup.py --tenants 5000

Starts its own embedded database, fills it with tenants whose Epic settings carry an external
gateway id (about 4 KB each) and a history entry each holding the same settings (a made-up id
is also looked for in history: the owner of an id edited out of its document is found there),
creates the repository's indexes (SettingsRepository.prepare) and times ``find_by_gateway_id``
for made-up ids against as many ``find_one({"_id": ...})`` in a row as it sends (one per
provider in documents and in history). Writes bench/results/gateway_id_lookup.json; exits
non-zero when the lookup's median is more than 3 times that ceiling's (without the indexes it
was about 1,000 times one read).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, process_tree, tree_cpu_seconds  # noqa: E402
from ehr_gateway.ehr.common import EhrProvider  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from ehr_gateway.storage.repository import (  # noqa: E402
    HISTORY,
    SETTINGS,
    SettingsRepository,
)
from ehr_gateway.storage.secrets import ChainKeys  # noqa: E402

DATABASE = "bench_gateway_id"
ALLOWED_RATIO = 3.0
# A made-up id is one indexed read per provider in the settings documents and one in history
# (an id edited out of its owner's document is found there): the ceiling is that many reads by
# ``_id``, one after the other.
READS = 2 * len(EhrProvider)


def _tenant(n: int) -> dict[str, Any]:
    return {
        "_id": f"tenant-{n}",
        "version": 1,
        "provider": "EPIC",
        "providers": {
            "EPIC": {
                "externalGateway": {"externalGatewayId": secrets.token_hex(12)},
                "padding": "x" * 4000,
            }
        },
    }


async def _median_ms(lookups: list[Any]) -> tuple[float, float]:
    """The median wall time of the lookups, and the mean CPU time of this process and the
    database server together per lookup (what a machine shared with other work counts)."""
    times = []
    cpu = tree_cpu_seconds(process_tree(os.getpid()))
    for lookup in lookups:
        started = time.perf_counter()
        await lookup
        times.append(time.perf_counter() - started)
    cpu = tree_cpu_seconds(process_tree(os.getpid())) - cpu
    return round(statistics.median(times) * 1000, 3), round(cpu / len(lookups) * 1000, 3)


async def _reads_by_id(settings: Any, n: int, tenants: int) -> None:
    for read in range(READS):
        await settings.find_one({"_id": f"tenant-{(n + read) % tenants}"})


async def measure(url: str, tenants: int, lookups: int) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        settings = client[DATABASE][SETTINGS]
        history = client[DATABASE][HISTORY]
        for start in range(0, tenants, 1000):
            batch = [_tenant(n) for n in range(start, min(tenants, start + 1000))]
            await settings.insert_many(batch)
            await history.insert_many(
                [{"tenantId": row["_id"], "version": 1, "settings": row} for row in batch]
            )
        repository = SettingsRepository(client, DATABASE, ChainKeys(secrets.token_bytes(32)))
        await repository.prepare()
        made_up = [repository.find_by_gateway_id(secrets.token_hex(12)) for _ in range(lookups)]
        by_id = [_reads_by_id(settings, n, tenants) for n in range(lookups)]
        ceiling, ceiling_cpu = await _median_ms(by_id)
        lookup, lookup_cpu = await _median_ms(made_up)
    finally:
        await client.close()
    return {
        "tenants": tenants,
        "lookups": lookups,
        "ceiling_reads": READS,
        "ceiling_reads_by_id_p50_ms": ceiling,
        "ceiling_cpu_ms": ceiling_cpu,
        "made_up_gateway_id_p50_ms": lookup,
        "made_up_gateway_id_cpu_ms": lookup_cpu,
        "ratio": round(lookup / ceiling, 1) if ceiling else None,
        "loadavg": os.getloadavg()[0],
        "allowed_ratio": ALLOWED_RATIO,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedMongo(Path(data)) as server:
        result = asyncio.run(measure(server.url, args.tenants, args.lookups))
    out = ROOT / "bench" / "results" / "gateway_id_lookup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if result["ratio"] is not None and result["ratio"] > ALLOWED_RATIO:
        sys.exit(f"a made-up gateway id costs {result['ratio']}x {READS} lookups by _id")


if __name__ == "__main__":
    main()
