"""Embedded database restart benchmark: seconds from ``kill -9`` of the nx-27017 child of a serving
gateway to the first acknowledged write sent after it, against the target of 5 s.

    python bench/faults_restart.py                   # 10 kills, 31 s apart
    python bench/faults_restart.py --kills 3 --pause 1

A gateway (``ehr-gateway serve`` on the embedded database, EHRGW_DB_TIMEOUT_MS=1000) is started
in a temporary data dir. For each kill: writes are acknowledged, the child is killed, and a
writer sends one write after another (each waiting at most 2 s for its answer) until one is
acknowledged. Kills are ``--pause`` seconds apart: the supervisor's backoff starts again from
0.1 s after a server stayed up 30 s, so the default measures a first death each time; a shorter
pause measures the backoff too. The ceiling, in the same run, is the time of one write to a
healthy gateway (the median of 50).

Writes bench/results/faults_restart.json (or --out) and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from tests.processes import GatewayProcess, embedded_pid  # noqa: E402

TARGET_S = 5.0
SELECT_ELLKAY = """
mutation Select($tenantId: ID!) { selectEhrProvider(tenantId: $tenantId, provider: ELLKAY) {
  __typename } }
"""
STORE_KEY = """
mutation StoreKey($tenantId: ID!, $key: String!) {
  updateEhrSettings(tenantId: $tenantId, input: {ellkay: {waitlistingStatusName: $key}}) {
    __typename
  }
}
"""


def write(client: httpx.Client, tenant_id: str, key: str) -> bool:
    """One write; whether it was acknowledged."""
    try:
        response = client.post(
            "/graphql", json={"query": STORE_KEY, "variables": {"tenantId": tenant_id, "key": key}}
        )
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError):
        return False
    return "errors" not in body and body["data"]["updateEhrSettings"]["__typename"] == (
        "SettingsSaved"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--pause", type=float, default=31.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/faults_restart.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        gateway = GatewayProcess(Path(scratch) / "data", EHRGW_DB_TIMEOUT_MS="1000")
        try:
            tenant_id = "bench-restart"
            gateway.graphql(SELECT_ELLKAY, tenantId=tenant_id)
            client = httpx.Client(
                base_url=gateway.url,
                headers={"authorization": f"Bearer {gateway.token}"},
                timeout=2,
            )
            healthy = []
            for attempt in range(50):
                started = time.monotonic()
                assert write(client, tenant_id, f"healthy-{attempt}")
                healthy.append(time.monotonic() - started)
            recoveries = []
            for kill in range(args.kills):
                if kill:
                    time.sleep(args.pause)
                assert write(client, tenant_id, f"before-{kill}")
                server = embedded_pid(gateway.data_dir)
                assert server is not None
                os.kill(server, signal.SIGKILL)
                killed_at = time.monotonic()
                attempt = 0
                while not write(client, tenant_id, f"after-{kill}-{attempt}"):
                    attempt += 1
                    time.sleep(0.02)
                recoveries.append(time.monotonic() - killed_at)
                print(f"kill {kill + 1}: writes acknowledged again after {recoveries[-1]:.2f} s")
            client.close()
        finally:
            output = gateway.stop()
    result = {
        "machine": machine(),
        "kills": args.kills,
        "pauseS": args.pause,
        "targetS": TARGET_S,
        "recoveryS": {
            "each": [round(value, 3) for value in recoveries],
            "median": round(statistics.median(recoveries), 3),
            "max": round(max(recoveries), 3),
        },
        "ceilingHealthyWriteS": round(statistics.median(healthy), 4),
        "restartsLogged": output.count("the embedded database is back"),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["recoveryS"]), f"ceiling {result['ceilingHealthyWriteS']} s")


if __name__ == "__main__":
    main()
