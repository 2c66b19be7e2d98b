"""What loading a tenant's settings document costs, and how much of it is the check that no
newer version is in history (a sealed but older document put back is not served).

    python bench/document_load_cost.py --tenants 200 --rounds 5

Stores ``--tenants`` Epic tenants through the storage layer on the embedded database, then
loads each (``SettingsRepository.get``: what a settings cache fill, a write's base without the
cache and a gateway id lookup do) ``--rounds`` times, in this process: no HTTP, no GraphQL. Each
round is run twice, alternately: as the gateway loads (seal checked, then the newest history
version compared) and with the comparison left out, so both see the same load on the machine.
Prints, per load, the median round's wall time and this process's CPU time for each, and the
difference: the comparison's cost. The database's own CPU is in its process, not counted.
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

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings  # noqa: E402
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from ehr_gateway.storage.repository import SettingsRepository  # noqa: E402
from ehr_gateway.storage.secrets import ChainKeys  # noqa: E402

DATABASE = "document_load_cost"


async def _seed(repository: SettingsRepository, tenants: int) -> list[str]:
    ids = [f"load-{n:05d}" for n in range(tenants)]
    for tenant_id in ids:
        settings = TenantSettings(
            tenant_id=tenant_id,
            provider=EhrProvider.EPIC,
            providers={EhrProvider.EPIC: ProviderSettings(ehr={"context": "Scheduling"})},
        )
        for version in range(3):  # a few versions, as a tenant in use has
            await repository.save(
                settings, base_version=version, actor="bench",
                changed_blocks=[SettingsBlock.PROVIDER], changed_paths=["provider"],
            )  # fmt: skip
    return ids


async def _round(repository: SettingsRepository, ids: list[str]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for tenant_id in ids:
        assert await repository.get(tenant_id) is not None
    return time.perf_counter() - started, time.process_time() - cpu


async def measure(url: str, tenants: int, rounds: int) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        repository = SettingsRepository(client, DATABASE, ChainKeys(os.urandom(32)))
        await repository.prepare()
        ids = await _seed(repository, tenants)
        checked = repository._newest_entry  # the comparison under measure

        async def unchecked(settings: TenantSettings) -> TenantSettings:
            return settings

        found: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
        await _round(repository, ids)  # warm up
        for _ in range(rounds):
            for case in ("with", "without"):
                repository._newest_entry = checked if case == "with" else unchecked  # type: ignore[method-assign]
                found[case].append(await _round(repository, ids))
        per_load = {
            case: {
                "wall_ms": statistics.median(s for s, _ in runs) / tenants * 1000,
                "cpu_ms": statistics.median(c for _, c in runs) / tenants * 1000,
            }
            for case, runs in found.items()
        }
        return {
            "tenants": tenants,
            "rounds": rounds,
            "per_load": per_load,
            "comparison": {
                key: per_load["with"][key] - per_load["without"][key]
                for key in ("wall_ms", "cpu_ms")
            },
        }
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        result = asyncio.run(measure(db.url, arguments.tenants, arguments.rounds))
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
