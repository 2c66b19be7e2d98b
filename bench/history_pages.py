"""History and audit-log pages as one tenant's history grows: the cost of a page should follow
the page (20 entries), not the history. Quicker to run than bench/growth.py's history dimension,
which writes each version through the storage layer (about 15 ms a version): here two versions
are written that way and then copied, as stored, under the following versions and audit
sequence numbers, straight into the database.

    python bench/history_pages.py                       # 1,000, 10,000 and 100,000 versions
    python bench/history_pages.py --sizes 1000 10000 --requests 50 --out /tmp/pages.json

Per size, one request at a time through a gateway process started afresh (response cache off):
``settingsHistory``'s newest page and a page 95% of the way back, ``auditLog``'s newest page and
a page 95% of the way back; for each, latency, the gateway's CPU per request and the embedded
database server's CPU per request (from /proc: hardly changed by a busy machine). Ceiling beside
them: the driver's own find of the newest 20 history entries. The copied entries do not verify
(their MACs are the template's): neither page verifies entries, so that does not matter here.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    cpu_seconds,
    machine,
    summarize,
    time_newest_history_find,
)
from bench.growth import gateway, repeat  # noqa: E402
from ehr_gateway.ehr.blocks import TenantSettings  # noqa: E402
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.audit import AUDIT  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from ehr_gateway.storage.repository import HISTORY, SettingsRepository  # noqa: E402
from ehr_gateway.storage.secrets import SecretBox  # noqa: E402
from tests.documents import SETTINGS_HISTORY  # noqa: E402

DATABASE = "bench_history_pages"
TENANT = "pages-history"
# Other tenants' entries beside the measured one: a page must not read them either.
NEIGHBOURS = 1
AUDIT_LOG = """
query AuditLog($tenantId: ID!, $before: String) {
  auditLog(tenantId: $tenantId, first: 20, before: $before) {
    entries { id at subject operation outcome version requestId }
    hasMore nextBefore
  }
}
"""
BATCH = 2_000


async def write_templates(url: str, data_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two versions of TENANT through the storage layer; its newest history and audit rows."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        repository = SettingsRepository(client, DATABASE, SecretBox.from_data_dir(data_dir).chain)
        await repository.prepare()
        settings = TenantSettings(tenant_id=TENANT, provider=EhrProvider.EPIC)
        for base in range(2):
            saved = await repository.save(
                settings, base_version=base, actor="bench", changed_blocks=[SettingsBlock.EHR],
                changed_paths=["providers.EPIC.ehr.context"],
            )  # fmt: skip
            assert isinstance(saved, TenantSettings), saved
            settings = saved
        database = client[DATABASE]
        history = await database[HISTORY].find_one({"tenantId": TENANT, "version": 2})
        audit = await database[AUDIT].find_one({"tenantId": TENANT, "version": 2})
        assert history is not None and audit is not None
        return history, audit
    finally:
        await client.close()


def _copies(
    template: dict[str, Any], audit: dict[str, Any], tenant_id: str, versions: range
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for version in versions:
        row = copy.deepcopy(template)
        # Dated a day back, a millisecond apart: the repairs task looks at versions written in
        # the last minutes, and 100,000 copies dated now would keep it busy while pages are timed.
        changed_at = template["changedAt"] - timedelta(days=1) + timedelta(milliseconds=version)
        row.update(_id=ObjectId(), tenantId=tenant_id, version=version, changedAt=changed_at)
        row["settings"]["_id"] = tenant_id
        row["settings"]["version"] = version
        entry = copy.deepcopy(audit)
        entry_id = f"{tenant_id}:v{version:012d}"
        ms = int(changed_at.timestamp() * 1000)
        entry.update(
            _id=entry_id, tenantId=tenant_id, version=version, seq=version, at=changed_at,
            order=f"{ms:015d}:{entry_id}",
        )  # fmt: skip
        yield row, entry


async def grow(
    url: str,
    templates: tuple[dict[str, Any], dict[str, Any]],
    tenants: list[str],
    start: int,
    end: int,
) -> None:
    """Versions ``start`` to ``end`` of each of ``tenants`` copied in."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        database = client[DATABASE]
        for tenant_id in tenants:
            for first in range(start, end + 1, BATCH):
                last = min(end, first + BATCH - 1)
                batch = list(_copies(*templates, tenant_id, range(first, last + 1)))
                await database[HISTORY].insert_many([row for row, _ in batch], ordered=False)
                await database[AUDIT].insert_many([entry for _, entry in batch], ordered=False)
    finally:
        await client.close()


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
        templates = asyncio.run(write_templates(db.url, data_dir))
        neighbours = [f"pages-neighbour-{n}" for n in range(NEIGHBOURS)]
        asyncio.run(grow(db.url, templates, neighbours, 1, 2))
        have = 2
        for size in sorted(sizes):
            asyncio.run(grow(db.url, templates, [TENANT, *neighbours], have + 1, size))
            have = size
            deep_version = max(25, int(size * 0.05))
            deep_id = f"{TENANT}:v{deep_version:012d}"
            variables = {"tenantId": TENANT}
            row: dict[str, Any] = {"versions": size, "load_average": list(os.getloadavg())}
            with gateway(db.url, data_dir, DATABASE) as (url, pid):
                assert db.pid is not None
                pids = {"gateway": pid, "database": db.pid}
                headers = {"authorization": f"Bearer {token}"}
                with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
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
