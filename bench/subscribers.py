"""Subscription fan-out benchmark: N concurrent subscribers of one tenant, commit→delivery latency
and the gateway's memory per subscriber, side by side with the ceiling of this machine (a bare
Starlette WebSocket broadcast of one pre-serialised message of the same size).

    python bench/subscribers.py                      # 1,000 subscribers
    python bench/subscribers.py --subscribers 10000

Starts its own embedded database, one gateway process and the ceiling app on loopback ports,
and writes bench/results/subscribers-<N>.json, then bench/results/subscribers.png from every
subscriber count there. Subscribers share connections (100 operations
per graphql-transport-ws connection, the gateway's default limit), as runtime services that
follow many tenants do; every subscription is a separate operation with its own result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, render_chart, started, summarize, wait_http  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGET_P99_MS = 250  # for 10,000 subscribers on one process (DESIGN.md)

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
                subprotocols=[Subprotocol("graphql-transport-ws")],
                max_size=None,
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
        **summarize(receiver.latencies, "deliveries"),
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
    return summarize(receiver.latencies, "deliveries")


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
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        port = free_port()
        with started(
            [sys.executable, "-m", "ehr_gateway.server.cli", "serve"],
            EHRGW_MONGODB_URL=db.url, EHRGW_DATA_DIR=scratch, EHRGW_PORT=str(port),
        ) as gateway:  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", lambda body: body.get("changeFeed") == "running")
            # One service token for every subscriber, as a fleet of runtime services has.
            token = dev_tokens.mint(
                Path(scratch), tenants=["bench"], roles=["editor", "service"], subject="bench"
            )
            results["gateway"] = asyncio.run(
                run_gateway(url, gateway.pid, args.subscribers, args.changes, token)
            )
    if not args.no_ceiling:
        port = free_port()
        with started(
            [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port),
             "--log-level", "warning"],
        ):  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz")
            results["ceiling"] = asyncio.run(
                run_ceiling(url, args.subscribers, args.changes, size=3000)
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"subscribers-{args.subscribers}.json").write_text(
        json.dumps(results, indent=2) + "\n"
    )
    chart_every_run()
    print(json.dumps(results, indent=2))


def chart_every_run() -> None:
    """One chart of every subscriber count in bench/results, gateway beside ceiling."""
    runs = sorted(
        (json.loads(path.read_text()) for path in RESULTS.glob("subscribers-*.json")),
        key=lambda run: int(run["subscribers"]),
    )
    labels: list[str] = []
    rows: list[dict[str, Any]] = []
    for run in runs:
        for target in ("gateway", "ceiling"):
            if target in run:
                labels.append(f"{target}, {run['subscribers']:,} subscribers")
                rows.append(run[target])
    render_chart(
        RESULTS / "subscribers.png",
        title=f"Subscription fan-out: commit to client ({runs[-1]['machine']['cores']} cores)",
        labels=labels,
        latencies={name: [row[f"{name}_ms"] for row in rows] for name in ("p50", "p99", "max")},
        latency_reference=(TARGET_P99_MS, "target p99 at 10,000"),
    )


if __name__ == "__main__":
    main()
