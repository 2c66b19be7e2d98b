"""Gateway id lookup cost: what the unauthenticated base path URL (and resolveExternalGateway)
costs the database for a made-up external gateway id, against its ceiling in the same run, a
lookup of a settings document by ``_id``.

    python bench/gateway_id_lookup.py                  # 20,000 tenants, 200 lookups each
    python bench/gateway_id_lookup.py --tenants 5000

Starts its own embedded database, fills it with tenants whose Epic settings carry an external
gateway id (about 4 KB each) and a history entry each holding the same settings (a made-up id
is also looked for in history: the owner of an id edited out of its document is found there),
creates the repository's indexes (SettingsRepository.prepare) and times ``find_by_gateway_id``
for made-up ids and ``find_one({"_id": ...})`` for existing tenants. Writes
bench/results/gateway_id_lookup.json; exits non-zero when the lookup's median is more than 10
times the ceiling's (without the indexes it was about 1,000 times).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from bench.common import machine  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from ehr_gateway.storage.repository import (  # noqa: E402
    HISTORY,
    SETTINGS,
    SettingsRepository,
)
from ehr_gateway.storage.secrets import ChainKeys  # noqa: E402

DATABASE = "bench_gateway_id"
ALLOWED_RATIO = 10.0


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


async def _median_ms(lookups: list[Any]) -> float:
    times = []
    for lookup in lookups:
        started = time.perf_counter()
        await lookup
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


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
        by_id = [settings.find_one({"_id": f"tenant-{n % tenants}"}) for n in range(lookups)]
        ceiling = await _median_ms(by_id)
        lookup = await _median_ms(made_up)
    finally:
        await client.close()
    return {
        "tenants": tenants,
        "lookups": lookups,
        "ceiling_by_id_p50_ms": ceiling,
        "made_up_gateway_id_p50_ms": lookup,
        "ratio": round(lookup / ceiling, 1) if ceiling else None,
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
        sys.exit(f"a made-up gateway id costs {result['ratio']}x a lookup by _id")


if __name__ == "__main__":
    main()
