"""Subscription fan-out benchmark: N concurrent subscribers of one tenant, commit→delivery latency
and the gateway's memory per subscriber, side by side with the ceiling of this machine (a bare
Starlette WebSocket broadcast of one pre-serialised message of the same size), in one run.

    python bench/subscribers.py --shape 100x100      # 100 connections of 100 subscriptions
    python bench/subscribers.py --shape 10000x1      # 10,000 connections of one each

The two shapes runtime services use: a service that follows many tenants (or many of its own
workers) shares a connection between its subscriptions, up to the gateway's 100 operations per
connection; an agent desktop or a service instance has a connection of its own. Every
subscription is a separate graphql-transport-ws operation with its own results; the ceiling
sends the same number of frames over the same number of connections.

Starts its own embedded database, one gateway process and the ceiling app on loopback ports,
and writes bench/results/subscribers-<connections>x<per connection>.json (with the load average
before and after each target: a busy machine shows as one), then bench/results/subscribers.png
from every run there. The client does not negotiate permessage-deflate, with either target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
TARGET_RATIO = 1.5  # gateway p99 over the ceiling's, for 10,000 subscribers (DESIGN.md)

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
CONNECTING_AT_ONCE = 16
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


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


async def connect(url: str, **options: Any) -> Any:
    # No permessage-deflate: its per-connection state (hundreds of KiB a side with context
    # takeover) would be most of each connection's memory at 10,000 connections.
    # A busy machine takes its time over 10,000 handshakes: none is given up on, and one the
    # server dropped is tried again, as clients reconnect.
    for attempt in range(3):
        try:
            return await websockets.connect(
                url, max_size=None, compression=None, open_timeout=None, **options
            )
        except (OSError, websockets.InvalidHandshake):
            if attempt == 2:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def open_all(count: int, opening: Any) -> list[Any]:
    """``count`` connections, ``CONNECTING_AT_ONCE`` handshakes at a time."""
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def one(index: int) -> Any:
        async with gate:
            return await opening(index)

    return list(await asyncio.gather(*(one(index) for index in range(count))))


async def run_gateway(
    url: str, pid: int, connections_n: int, per_connection: int, changes: int, token: str
) -> dict[str, Any]:
    subscribers = connections_n * per_connection
    ws_url = url.replace("http", "ws") + "/graphql"
    headers = {"authorization": f"Bearer {token}"}

    async def subscribed(index: int) -> Any:
        connection = await connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")])
        init = {"type": "connection_init", "payload": {"Authorization": headers["authorization"]}}
        await connection.send(json.dumps(init))
        await connection.recv()
        for operation in range(per_connection):
            await connection.send(
                json.dumps(
                    {
                        "id": f"{index}.{operation}",
                        "type": "subscribe",
                        "payload": {"query": SUBSCRIPTION, "variables": {"tenantId": "bench"}},
                    }
                )
            )
        return connection

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        await http.post("/graphql", json={"query": SELECT_EPIC})
        rss_before = rss_kib(pid)
        receiver = Receiver(_CHANGED_AT, lambda text: datetime.fromisoformat(text).timestamp())
        connections = await open_all(connections_n, subscribed)
        readers = [asyncio.create_task(_read(c, receiver)) for c in connections]
        # The server is another process: ask it until every subscription is open.
        while (await http.get("/healthz")).json()["subscribers"] < subscribers:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        rss_after = rss_kib(pid)
        load_before = load_average()
        complete = 0
        for change in range(changes):
            await http.post(
                "/graphql", json={"query": CHANGE, "variables": {"context": f"c{change}"}}
            )
            if await _wait_for(receiver, subscribers * (change + 1), within=60):
                complete += 1
            await asyncio.sleep(0.3)
        load_after = load_average()
        for connection in connections:
            await connection.close()
        for reader in readers:
            reader.cancel()
    return {
        **summarize(receiver.latencies, "deliveries"),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "changes": changes,
        "changes_fully_delivered": complete,
        "memory_per_subscriber_kib": round((rss_after - rss_before) / subscribers, 2),
        "rss_before_mib": round(rss_before / 1024, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
    }


async def run_ceiling(
    url: str, connections_n: int, per_connection: int, changes: int, size: int
) -> dict[str, Any]:
    """The same fan-out as plain WebSocket broadcast: as many connections, each receiving
    ``per_connection`` copies, to match the gateway's frame count."""
    subscribers = connections_n * per_connection
    receiver = Receiver(_SENT_AT, float)
    ws_url = url.replace("http", "ws") + "/ws"
    connections = await open_all(connections_n, lambda index: connect(ws_url))
    readers = [asyncio.create_task(_read(c, receiver)) for c in connections]
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        while (await http.get("/healthz")).json()["subscribers"] < len(connections):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        load_before = load_average()
        for change in range(changes):
            await http.post("/broadcast", params={"size": size, "repeat": per_connection})
            await _wait_for(receiver, subscribers * (change + 1), within=60)
            await asyncio.sleep(0.3)
        load_after = load_average()
    for connection in connections:
        await connection.close()
    for reader in readers:
        reader.cancel()
    return {
        **summarize(receiver.latencies, "deliveries"),
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def shape(text: str) -> tuple[int, int]:
    connections, _, per_connection = text.partition("x")
    return int(connections), int(per_connection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape",
        type=shape,
        default=(100, 100),
        help="CONNECTIONSxSUBSCRIPTIONS per connection: 100x100 (default) or 10000x1",
    )
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling run")
    args = parser.parse_args()
    connections, per_connection = args.shape

    results: dict[str, Any] = {
        "benchmark": "subscription fan-out",
        "command": " ".join(["python", "bench/subscribers.py", *sys.argv[1:]]),
        "subscribers": connections * per_connection,
        "connections": connections,
        "subscriptions_per_connection": per_connection,
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        port = free_port()
        with started(
            [sys.executable, "-m", "ehr_gateway.server.cli", "serve"],
            EHRGW_MONGODB_URL=db.url, EHRGW_DATA_DIR=scratch, EHRGW_PORT=str(port),
            # 10,000 handshakes queue behind one another on a busy machine: more than the
            # default 10 s to read each (a defence against slow senders, not a limit on load).
            EHRGW_REQUEST_READ_TIMEOUT_S="120", EHRGW_WS_INIT_TIMEOUT_S="120",
        ) as gateway:  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", lambda body: body.get("changeFeed") == "running")
            # One service token for every subscriber, as a fleet of runtime services has.
            token = dev_tokens.mint(
                Path(scratch), tenants=["bench"], roles=["editor", "service"], subject="bench"
            )
            results["gateway"] = asyncio.run(
                run_gateway(url, gateway.pid, connections, per_connection, args.changes, token)
            )
    RESULTS.mkdir(exist_ok=True)
    output = RESULTS / f"subscribers-{connections}x{per_connection}.json"
    output.write_text(json.dumps(results, indent=2) + "\n")  # kept should the ceiling fail
    if not args.no_ceiling:
        port = free_port()
        with started(
            [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port),
             "--log-level", "warning"],
        ):  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz")
            try:
                results["ceiling"] = asyncio.run(
                    run_ceiling(url, connections, per_connection, args.changes, size=3000)
                )
            except httpx.HTTPError as error:
                results["ceiling_error"] = repr(error)
            gateway_p99 = results["gateway"].get("p99_ms")
            ceiling_p99 = results.get("ceiling", {}).get("p99_ms")
            if gateway_p99 and ceiling_p99:
                results["p99_ratio"] = round(gateway_p99 / ceiling_p99, 2)
    output.write_text(json.dumps(results, indent=2) + "\n")
    chart_every_run()
    print(json.dumps(results, indent=2))


def chart_every_run() -> None:
    """One chart of every shape in bench/results, gateway beside ceiling."""
    runs = sorted(
        (json.loads(path.read_text()) for path in RESULTS.glob("subscribers-*x*.json")),
        key=lambda run: (int(run["subscribers"]), -int(run["subscriptions_per_connection"])),
    )
    labels: list[str] = []
    rows: list[dict[str, Any]] = []
    for run in runs:
        for target in ("gateway", "ceiling"):
            if target in run:
                per_connection = run["subscriptions_per_connection"]
                labels.append(f"{target}, {run['connections']:,} conn. x {per_connection}")
                rows.append(run[target])
    render_chart(
        RESULTS / "subscribers.png",
        title=f"Subscription fan-out: commit to client ({runs[-1]['machine']['cores']} cores)",
        labels=labels,
        latencies={name: [row[f"{name}_ms"] for row in rows] for name in ("p50", "p99", "max")},
    )


if __name__ == "__main__":
    main()
