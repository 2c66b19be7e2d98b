"""/metrics carries the process's own figures beside the gateway's, as any Python exporter does:
CPU time, resident memory, and the garbage collector's collections per generation."""

from __future__ import annotations

import gc
import re
from pathlib import Path

from tests.conftest import gateway_config, open_gateway

METRICS_TOKEN = "scrape-5e1a9c3b7d2f4a6e"


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert found, f"{series} not in /metrics"
    return float(found.group(1))


async def test_metrics_count_the_processs_cpu_and_its_garbage_collections(
    database_url: str, tmp_path: Path
) -> None:
    config = gateway_config(database_url, tmp_path, metrics_token=METRICS_TOKEN)
    scraper = {"authorization": f"Bearer {METRICS_TOKEN}"}
    async for gateway in open_gateway(config):
        before = (await gateway.client.get("/metrics", headers=scraper)).text
        gc.collect(0)
        gc.collect(0)
        after = (await gateway.client.get("/metrics", headers=scraper)).text

    young = 'python_gc_collections_total{generation="0"}'
    assert value(after, young) >= value(before, young) + 2
    assert value(after, "process_cpu_seconds_total") > 0
    assert value(after, "process_resident_memory_bytes") > 10_000_000
