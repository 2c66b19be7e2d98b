"""Subscription fan-out benchmark: N concurrent subscribers of one tenant, commit→delivery latency
and the gateway's memory per subscriber, side by side with the ceiling of this machine (a bare
Starlette WebSocket broadcast of one pre-serialised message of the same size).

    python bench/subscribers.py                      # 1,000 subscribers
    python bench/subscribers.py --subscribers 10000

Starts its own embedded database, one gateway process and the ceiling app on loopback ports,
and writes bench/results/subscribers-<N>.json. Subscribers share connections (100 operations
per graphql-transport-ws connection, the gateway's default limit), as runtime services that
follow many tenants do; every subscription is a separate operation with its own result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resolvers import dev_tokens  # noqa: E402
from storage.embedded import EmbeddedMongo, free_port  # noqa: E402

# A runtime service's selection: the Epic settings it acts on, about 60 fields through unions.
SUBSCRIPTION = """
subscription Follow($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId) {
    tenantId version changedAt versionsSkipped changedBlocks
    settings {
      version provider
      headers { ... on EpicHeaderSettings { epicClientId epicUserId epicUserIdType } }
      fhir {
        ... on EpicFhirSettings {
          urlPrefix ssnIdentifier mrnIdentifier practitionerExternalUrn locationExternalUrn
          selfServiceIdentifier legalSexSearch useBatch dayRangeForTemporalSearches
          useGtInDateRange useLtInDateRange useTelecom usePatientIdAsIdentifier
          categoryFilterArray directRescheduleUseCase
        }
      }
      ehr {
        ... on EpicSettings {
          vipFlagType context jkuServerUrl enableDefaultJkuServerUrlPattern jwtIssuerUrl
          epicUserId epicUserIdType providerIdType locationIdType visitIdType soapUsername
          useOauth oauthBasePath receiveCommunicationVersion phoneSystemId phoneSystemType
          fallbackEntryDepartmentIdForServiceRecord fallbackEntryDepartmentTypeForServiceRecord
          fallbackAgentUserIdForServiceRecord fallbackAgentUserTypeForServiceRecord
          sourceTypeForServiceRecord sourceNameForServiceRecord sourceEntityIdForServiceRecord
          sourceEntityTypeForServiceRecord fallbackPatientIdTypeForServiceRecord
          epicMaximumSlotSearchDateRangeInDays maxAllowedSlotSearchDateRangeDays
          quickCrmTopicMapping { name value } sendRecordingUrl sendDataAfterMissedCall
        }
      }
      oauth { ... on EpicOAuthSettings { epicClientId oauthTokenUrl } }
    }
  }
}
"""
SELECT_EPIC = 'mutation { selectEhrProvider(tenantId: "bench", provider: EPIC) { __typename } }'
CHANGE = """
mutation Change($context: String!) {
  updateEhrSettings(tenantId: "bench", input: {epic: {context: $context}}) { __typename }
}
"""
PER_CONNECTION = 100
_CHANGED_AT = re.compile(r'"changedAt":"([^"]+)"')
_SENT_AT = re.compile(r'"sentAt":\s*([0-9.]+)')


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_http(url: str, ready: Any = lambda body: True, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            try:
                body: dict[str, Any] = client.get(url, timeout=2).json()
                if ready(body):
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


class Receiver:
    """Counts deliveries per change and records commit→receive latencies."""

    def __init__(self, stamp: re.Pattern[str], parse: Any) -> None:
        self.latencies: list[float] = []
        self.received = 0
        self.stamp = stamp
        self.parse = parse

    def take(self, raw: str | bytes) -> None:
        now = time.time()
        text = raw if isinstance(raw, str) else raw.decode()
        found = self.stamp.search(text)
        if found:
            self.latencies.append(now - self.parse(found.group(1)))
            self.received += 1


async def _read(connection: Any, receiver: Receiver) -> None:
    try:
        async for raw in connection:
            receiver.take(raw)
    except websockets.ConnectionClosed:
        pass


async def _wait_for(receiver: Receiver, count: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while receiver.received < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def summarize(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {}

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1)

    return {
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
        "deliveries": len(ordered),
    }


async def run_gateway(
    url: str, pid: int, subscribers: int, changes: int, token: str
) -> dict[str, Any]:
    ws_url = url.replace("http", "ws") + "/graphql"
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        await http.post("/graphql", json={"query": SELECT_EPIC})
        rss_before = rss_kib(pid)
        receiver = Receiver(_CHANGED_AT, lambda text: datetime.fromisoformat(text).timestamp())
        connections = []
        for first in range(0, subscribers, PER_CONNECTION):
            connection = await websockets.connect(
                ws_url,
                subprotocols=["graphql-transport-ws"],
                max_size=None,  # type: ignore[list-item]
            )
            await connection.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": headers["authorization"]},
                    }
                )
            )
            await connection.recv()
            for operation in range(first, min(first + PER_CONNECTION, subscribers)):
                await connection.send(
                    json.dumps(
                        {
                            "id": str(operation),
                            "type": "subscribe",
                            "payload": {"query": SUBSCRIPTION, "variables": {"tenantId": "bench"}},
                        }
                    )
                )
            connections.append(connection)
        readers = [asyncio.create_task(_read(c, receiver)) for c in connections]
        # The server is another process: ask it until every subscription is open.
        while (await http.get("/healthz")).json()["subscribers"] < subscribers:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        rss_after = rss_kib(pid)
        complete = 0
        for change in range(changes):
            await http.post(
                "/graphql", json={"query": CHANGE, "variables": {"context": f"c{change}"}}
            )
            if await _wait_for(receiver, subscribers * (change + 1), within=60):
                complete += 1
            await asyncio.sleep(0.3)
        for connection in connections:
            await connection.close()
        for reader in readers:
            reader.cancel()
    return {
        **summarize(receiver.latencies),
        "changes": changes,
        "changes_fully_delivered": complete,
        "memory_per_subscriber_kib": round((rss_after - rss_before) / subscribers, 2),
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
    }


async def run_ceiling(url: str, subscribers: int, changes: int, size: int) -> dict[str, Any]:
    """The same fan-out as plain WebSocket broadcast: one connection per PER_CONNECTION
    subscribers, each receiving PER_CONNECTION copies, to match the gateway's message count."""
    receiver = Receiver(_SENT_AT, float)
    connections = []
    for _ in range(0, subscribers, PER_CONNECTION):
        connections.append(await websockets.connect(url.replace("http", "ws") + "/ws"))
    readers = [asyncio.create_task(_read(c, receiver)) for c in connections]
    async with httpx.AsyncClient(base_url=url) as http:
        while (await http.get("/healthz")).json()["subscribers"] < len(connections):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for change in range(changes):
            await http.post("/broadcast", params={"size": size, "repeat": PER_CONNECTION})
            await _wait_for(receiver, subscribers * (change + 1), within=60)
            await asyncio.sleep(0.3)
    for connection in connections:
        await connection.close()
    for reader in readers:
        reader.cancel()
    return summarize(receiver.latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling run")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "benchmark": "subscription fan-out",
        "command": " ".join(["python", "bench/subscribers.py", *sys.argv[1:]]),
        "subscribers": args.subscribers,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": datetime.now().isoformat(timespec="seconds"),
    }
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        port = free_port()
        env = {
            **os.environ,
            "EHRGW_MONGODB_URL": db.url,
            "EHRGW_DATA_DIR": scratch,
            "EHRGW_PORT": str(port),
        }
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gql.cli", "serve"], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", lambda body: body.get("changeFeed") == "running")
            # One service token for every subscriber, as a fleet of runtime services has.
            token = dev_tokens.mint(
                Path(scratch), tenants=["bench"], roles=["editor", "service"], subject="bench"
            )
            results["gateway"] = asyncio.run(
                run_gateway(url, gateway.pid, args.subscribers, args.changes, token)
            )
        finally:
            gateway.terminate()
            gateway.wait()
    if not args.no_ceiling:
        port = free_port()
        ceiling = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port),
             "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz")
            results["ceiling"] = asyncio.run(
                run_ceiling(url, args.subscribers, args.changes, size=3000)
            )
        finally:
            ceiling.terminate()
            ceiling.wait()
    out = ROOT / "bench" / "results" / f"subscribers-{args.subscribers}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
