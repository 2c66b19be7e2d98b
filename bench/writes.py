"""Write benchmark: validated, versioned, audited settings writes per second through GraphQL over
HTTP on the embedded database, and the commit→subscriber latency under that load.

    python bench/writes.py --sample                   # 16 writers, 10 s per configuration
    python bench/writes.py --writers 1,16 --seconds 15
    python bench/writes.py --profile /tmp/gateway.txt # the gateway under pyinstrument
    python bench/writes.py --sample --workers 2       # two gateway processes on the one port

Starts its own embedded database and one gateway process (or --workers of them, each a whole
gateway with its own change feed, as replicas are) on loopback ports, and writes
bench/results/writes.json and bench/results/writes.png (or --out). Each write is a real
`updateEhrSettings` mutation (a new Epic `context`) with a bearer token and `expectedVersion`:
validated, stored as a new version with its history entry and audit record. Two configurations
per writer count, each on fresh tenants:

- own tenant: every writer updates a tenant of its own (it never conflicts);
- one tenant: every writer updates the same tenant and, on VersionConflict, retries with the
  version the conflict reports. Only saved writes count as writes; conflicts are reported apart.

Meanwhile one subscriber (graphql-transport-ws, one operation per tenant, each asking for every
version after the tenant's first with ``sinceVersion``) follows every tenant written to,
records when each version arrives, and checks that it got every version exactly once.
Commit→subscriber latency is measured two ways: from the arrival of the mutation response that
saved the version to the arrival of its event (both clocks in this process), and from the
version's commit timestamp (`changedAt`, milliseconds, stamped by the gateway on this machine).

The writers share one process with a plain HTTP/1.1 keep-alive client (one connection each), so
that they take little of the machine; each configuration reports the CPU that the client, the
gateway and the database used, per request and as a share of a core. Then, in the same run, the
ceiling: the gateway's own storage layer alone (SettingsRepository.save from as many concurrent
tasks, each on a tenant of its own, batched as the gateway batches and starting from the settings
it stored last as the gateway starts from its cache), with no GraphQL, HTTP, validation, diff or
subscriber. Each result also gives the share of the machine's CPU left idle: near 0, the cores
were saturated, and writes/s is the CPU there was divided by the CPU a write costs. With
--sample an extra, separately reported phase runs with py-spy sampling the gateway, and the
share of its time per activity goes in the result's "profile".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    cpu_seconds,
    machine,
    process_tree,
    summarize,
    tree_cpu_seconds,
    wait_http,
)
from ehr_gateway.ehr.blocks import TenantSettings  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.storage.client import connect  # noqa: E402
from ehr_gateway.storage.embedded import PID_FILE, EmbeddedMongo, free_port  # noqa: E402
from ehr_gateway.storage.repository import SettingsRepository, history_entry  # noqa: E402
from ehr_gateway.storage.secrets import ChainKeys  # noqa: E402

TARGET = 500  # writes per second, the target
PER_CONNECTION = 100  # the gateway's default limit of operations per WebSocket connection
DATABASE = "ehr_gateway"  # the gateway's default database name

SELECT_EPIC = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
WRITE = """
mutation Write($tenantId: ID!, $context: String!, $expected: Int!) {
  updateEhrSettings(
    tenantId: $tenantId, input: {epic: {context: $context}}, expectedVersion: $expected
  ) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on VersionConflict { currentVersion }
    ... on ValidationFailed { errors { code path } }
  }
}
"""
# What a runtime service following a tenant's Epic context would select.
FOLLOW = """
subscription Follow($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) {
    tenantId version changedAt versionsSkipped
    settings { ehr { ... on EpicSettings { context } } }
  }
}
"""


def machine_ticks() -> tuple[int, int]:
    """The whole machine's idle and total CPU time so far, in clock ticks (all cores)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; without guest time


def idle_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time (all cores) that went unused between two readings:
    near 0, the cores were saturated, whatever each process's own share."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 2) if total else 0.0


@dataclass
class Phase:
    """What one configuration's writers and subscriber observed."""

    tenants: list[str]
    saved_at: dict[tuple[str, int], float] = field(default_factory=dict)  # response arrival
    arrived_at: dict[tuple[str, int], float] = field(default_factory=dict)  # event arrival
    changed_at: dict[tuple[str, int], float] = field(default_factory=dict)  # commit stamp
    write_latencies: list[float] = field(default_factory=list)
    duplicates: int = 0
    skipped: int = 0
    conflicts: int = 0
    failures: int = 0


class Follower:
    """One subscription per tenant over graphql-transport-ws, recording each version's arrival."""

    def __init__(self, ws_url: str, token: str) -> None:
        self._ws_url = ws_url
        self._token = token
        self._connections: list[Any] = []
        self._readers: list[asyncio.Task[None]] = []
        self.phase: Phase | None = None
        self._ids = itertools.count()

    async def follow(self, tenants: list[str]) -> None:
        for first in range(0, len(tenants), PER_CONNECTION):
            connection = await websockets.connect(
                self._ws_url,
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                max_size=None,
            )
            await connection.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"Authorization": f"Bearer {self._token}"},
                    }
                )
            )
            ack = json.loads(await connection.recv())
            assert ack["type"] == "connection_ack", ack
            for tenant in tenants[first : first + PER_CONNECTION]:
                await connection.send(
                    json.dumps(
                        {
                            "id": str(next(self._ids)),
                            "type": "subscribe",
                            "payload": {
                                "query": FOLLOW,
                                # Every version after the one just selected: without
                                # sinceVersion a subscription follows from the version
                                # current once it has started, and the first write may be it.
                                "variables": {"tenantId": tenant, "sinceVersion": 1},
                            },
                        }
                    )
                )
            self._connections.append(connection)
            self._readers.append(asyncio.create_task(self._read(connection)))

    async def _read(self, connection: Any) -> None:
        try:
            async for raw in connection:
                now = time.time()
                message = json.loads(raw)
                phase = self.phase
                if message.get("type") != "next" or phase is None:
                    continue
                change = message["payload"]["data"]["configurationChanged"]
                key = (change["tenantId"], change["version"])
                if change["versionsSkipped"]:
                    phase.skipped += 1
                if key in phase.arrived_at:
                    phase.duplicates += 1
                    continue
                phase.arrived_at[key] = now
                phase.changed_at[key] = datetime.fromisoformat(change["changedAt"]).timestamp()
        except websockets.ConnectionClosed:
            pass

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
        for reader in self._readers:
            reader.cancel()
        self._connections, self._readers = [], []


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON. Far cheaper per request than a general
    client, so the load generator stays a small share of the machine it shares with the gateway
    and the database."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self._host, self._port = host, port
        self._head = (
            f"POST /graphql HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        ).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._reader is not None and self._reader.at_eof():
            await self.close()  # the server ended it while it was idle (keep-alive timeout)
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        body = json.dumps(payload).encode()
        self._writer.write(b"%scontent-length: %d\r\n\r\n%s" % (self._head, len(body), body))
        status = await self._reader.readline()
        length = None
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if not status.startswith(b"HTTP/1.1 200") or length is None:
            raise RuntimeError(f"unexpected response: {status!r}")
        result: dict[str, Any] = json.loads(await self._reader.readexactly(length))
        return result

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._reader = self._writer = None


async def _writer(
    connection: Connection, phase: Phase, tenant: str, name: str, stop: asyncio.Event
) -> None:
    """Writes until ``stop``: each write a new context, at the version last seen."""
    version = 1  # after selectEhrProvider
    for count in itertools.count():
        if stop.is_set():
            return
        variables = {"tenantId": tenant, "context": f"{name}-{count}", "expected": version}
        sent = time.perf_counter()
        body = await connection.post({"query": WRITE, "variables": variables})
        arrived = time.time()
        took = time.perf_counter() - sent
        result = (body.get("data") or {}).get("updateEhrSettings")
        if result is None:
            phase.failures += 1
            raise RuntimeError(f"write failed: {body}")
        if result["__typename"] == "SettingsSaved":
            version = result["settings"]["version"]
            phase.saved_at[(tenant, version)] = arrived
            phase.write_latencies.append(took)
        elif result["__typename"] == "VersionConflict":
            phase.conflicts += 1
            version = result["currentVersion"]
        else:
            phase.failures += 1
            raise RuntimeError(f"write refused: {result}")


async def run_phase(
    http: httpx.AsyncClient,
    connections: list[Connection],
    follower: Follower,
    gateway_pids: list[int],
    database_pid: int,
    *,
    label: str,
    writers: int,
    shared: bool,
    seconds: float,
    during: Callable[[float], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """One configuration for ``seconds``; ``during`` runs alongside the writers."""
    tenants = [f"{label}-{n}" for n in range(1 if shared else writers)]
    for tenant in tenants:
        response = await http.post(
            "/graphql", json={"query": SELECT_EPIC, "variables": {"tenantId": tenant}}
        )
        assert "errors" not in response.json(), response.text
    await follower.follow(tenants)
    # Each subscription asks for every version after 1, the tenant's version once selected.
    expected_feeds = len(tenants)
    # Each gateway process answers for its own subscribers, and a fresh connection may reach
    # any of them (with --workers): asked until the one holding the subscriber answers.
    close = {"connection": "close"}
    while (await http.get("/healthz", headers=close)).json()["feedSubscribers"] < expected_feeds:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    phase = Phase(tenants)
    follower.phase = phase
    print(f"{label}: writing for {seconds} s", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    load = os.getloadavg()[0]  # before this phase: what else the machine was running
    cpu_client, cpu_gateway, cpu_database = (
        time.process_time(),
        tree_cpu_seconds(gateway_pids),
        cpu_seconds(database_pid),
    )
    per_process = {pid: tree_cpu_seconds([pid]) for pid in gateway_pids}
    ticks = machine_ticks()
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(
            _writer(connections[n], phase, tenants[0 if shared else n], f"w{n}", stop),
            name=f"writer {n}",
        )
        for n in range(writers)
    ]
    await asyncio.gather(asyncio.sleep(seconds), during(seconds) if during else asyncio.sleep(0))
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    machine_idle = idle_share(ticks, machine_ticks())
    cpu = {
        "client": time.process_time() - cpu_client,
        "gateway": tree_cpu_seconds(gateway_pids) - cpu_gateway,
        "database": cpu_seconds(database_pid) - cpu_database,
    }
    # With --workers: how the writers' connections spread the work among the processes.
    per_process = {pid: tree_cpu_seconds([pid]) - used for pid, used in per_process.items()}
    # Let the subscriber catch up with the last writes before checking it got every version.
    deadline = time.monotonic() + 10
    while not phase.saved_at.keys() <= phase.arrived_at.keys() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await follower.close()
    follower.phase = None

    saved = len(phase.saved_at)
    missing = len(phase.saved_at.keys() - phase.arrived_at.keys())
    gaps = 0
    for tenant in tenants:
        versions = sorted(v for t, v in phase.saved_at if t == tenant)
        if versions:
            gaps += versions[-1] - versions[0] + 1 - len(versions)
    after_response = [
        phase.arrived_at[key] - phase.saved_at[key]
        for key in phase.saved_at
        if key in phase.arrived_at
    ]
    after_commit = [phase.arrived_at[key] - at for key, at in phase.changed_at.items()]
    return {
        "configuration": "one tenant" if shared else "own tenant",
        "writers": writers,
        "tenants": len(tenants),
        "seconds": round(elapsed, 2),
        "writes": saved,
        "writes_per_s": round(saved / elapsed, 1),
        "conflicts": phase.conflicts,
        "conflicts_per_s": round(phase.conflicts / elapsed, 1),
        "write_latency": summarize(phase.write_latencies),
        "response_to_event": summarize(after_response),
        "commit_to_event": summarize(after_commit),
        "every_version_delivered": missing == 0 and phase.skipped == 0,
        "versions_missing": missing,
        "versions_skipped_flags": phase.skipped,
        "duplicate_events": phase.duplicates,
        "history_gaps_between_saved_versions": gaps,
        # Share of one core each process used during the phase, and its CPU time per request
        # (saved or conflicting): the cost of a write, less sensitive than writes/s to what
        # else the machine runs.
        "cpu_share": {name: round(used / elapsed, 2) for name, used in cpu.items()},
        "cpu_ms_per_request": {
            name: round(used * 1000 / max(1, saved + phase.conflicts), 2)
            for name, used in cpu.items()
        },
        "load_average_1m": round(load, 2),
        "machine_idle_share": machine_idle,
        "gateway_process_cpu_share": [round(used / elapsed, 2) for used in per_process.values()],
    }


# What a sampled stack of the gateway is doing. A stack under one of these frames is that
# activity, whatever it calls. py-spy names the gateway's own files from the package
# (``ehr_gateway/storage/...``), libraries' from their site-packages folder (``graphql/...``).
_UNDER = [
    ("change feed", ("(ehr_gateway/storage/change_feed.py",)),
    ("subscription delivery (shared executions, WebSocket)",
     ("(ehr_gateway/gql/multiplex.py", "(strawberry/subscriptions/")),
    ("write: storage (database calls through the driver, documents)",
     ("(ehr_gateway/storage/repository.py", "(ehr_gateway/storage/audit.py",
      "(ehr_gateway/storage/group_commit.py")),
]  # fmt: skip
# Otherwise the innermost frame of one of these packages says what it is (the gateway's GraphQL
# layer, its fast paths included, counts as GraphQL execution; the resolver it calls, and what
# that calls, as the write).
_INNERMOST = [
    ("database driver I/O callbacks", ("(pymongo/", "(bson/")),
    ("write: change, validation, diff, audit record (resolvers, ehr)",
     ("(ehr_gateway/resolvers/", "(ehr_gateway/ehr/", "(ehr_gateway/storage/",
      "(ehr_gateway/runtime/")),
    ("GraphQL parse and validation", ("(graphql/language/", "(graphql/validation/")),
    ("GraphQL execution around the resolver",
     ("(graphql/", "(strawberry/", "(ehr_gateway/gql/")),
    ("HTTP: server, middleware, gate, logs, metrics",
     ("(uvicorn/", "(starlette/", "(ehr_gateway/server/", "(logging/", "(prometheus_client/")),
]  # fmt: skip


def _activity(frames: list[str]) -> str:
    for name, parts in _UNDER:
        if any(part in frame for frame in frames for part in parts):
            return name
    for frame in reversed(frames):
        for name, parts in _INNERMOST:
            if any(part in frame for part in parts):
                return name
    return "event loop and other"


def profile_summary(raw: str) -> list[str]:
    """py-spy's raw (collapsed) stacks as the share of samples of each activity, largest
    first. Frames up to the event loop's (the process's entry point) are left out."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        loop = [n for n, frame in enumerate(frames) if "asyncio/runners.py" in frame]
        activity = _activity(frames[loop[-1] + 1 :] if loop else frames)
        counts[activity] = counts.get(activity, 0) + int(count)
        total += int(count)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return [f"{count * 100 / max(1, total):.0f}% {name}" for name, count in ranked]


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def sample(pids: list[int], seconds: float, into: Path) -> None:
    """Sample each of ``pids`` with py-spy (without pausing it) for ``seconds``, their stacks
    together into ``into``."""
    spy = py_spy()
    assert spy is not None
    outputs = [into.with_suffix(f".{pid}.txt") for pid in pids]
    processes = []
    for pid, output in zip(pids, outputs, strict=True):
        command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds)))]
        command += ["--rate", "200", "--nonblocking", "--format", "raw", "--output", str(output)]
        processes.append(
            await asyncio.create_subprocess_exec(
                *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
    for process in processes:
        await process.wait()
    stacks = "".join(o.read_text() for o in outputs if o.exists())
    into.write_text(stacks)  # noqa: ASYNC240


async def run(
    port: int, gateway_pid: int, database_pid: int, token: str, writer_counts: list[int],
    seconds: float, sampled: bool, workers: int,
) -> dict[str, Any]:  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    headers = {"authorization": f"Bearer {token}"}
    follower = Follower(f"ws://127.0.0.1:{port}/graphql", token)
    connections = [Connection("127.0.0.1", port, token) for _ in range(max(writer_counts))]
    results: dict[str, Any] = {"configurations": []}
    # With --workers, the supervisor and its workers; each worker is sampled.
    gateway_pids = process_tree(gateway_pid)
    workers_pids = [pid for pid in gateway_pids if pid != gateway_pid] if workers > 1 else []
    sampled_pids = workers_pids or [gateway_pid]
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        # Warm-up, not reported: imports, caches and connections on both sides.
        await run_phase(
            http, connections, follower, gateway_pids, database_pid,
            label="warmup", writers=max(writer_counts), shared=False, seconds=2,
        )  # fmt: skip
        for writers in writer_counts:
            for shared in (False, True):
                label = f"{'one' if shared else 'own'}-{writers}"
                result = await run_phase(
                    http, connections, follower, gateway_pids, database_pid,
                    label=label, writers=writers, shared=shared, seconds=seconds,
                )  # fmt: skip
                print(json.dumps(result), file=sys.stderr, flush=True)
                results["configurations"].append(result)
        if sampled:
            # A phase of its own, so that the sampler's cost is in none of the numbers above.
            with tempfile.TemporaryDirectory() as scratch:
                stacks = Path(scratch) / "stacks.txt"
                sampled_run = await run_phase(
                    http, connections, follower, gateway_pids, database_pid,
                    label="sampled", writers=max(writer_counts), shared=False, seconds=seconds,
                    during=lambda length: sample(sampled_pids, length, stacks),
                )  # fmt: skip
                results["profile"] = {
                    "how": f"py-spy record --rate 200 --nonblocking on the gateway during an "
                    f"extra own-tenant phase of {max(writer_counts)} writers "
                    f"({sampled_run['writes_per_s']} writes/s while sampled); share of the "
                    f"gateway's busy samples",
                    "gateway": profile_summary(stacks.read_text()),
                }
    for connection in connections:
        await connection.close()
    return results


def templates(url: str, tenant: str) -> dict[str, dict[str, Any]]:
    """A stored settings document, history entry and audit entry the gateway wrote, as the
    ceiling's documents: the same shapes and sizes."""
    client: MongoClient[dict[str, Any]] = MongoClient(url, tz_aware=True)
    try:
        db = client[DATABASE]
        found = {
            "settings": db["tenant_settings"].find_one({"_id": tenant}),
            "history": db["tenant_settings_history"].find_one(
                {"tenantId": tenant}, sort=[("version", -1)]
            ),
            "audit": db["audit_log"].find_one({"tenantId": tenant, "outcome": "SAVED"}),
        }
    finally:
        client.close()
    missing = [name for name, document in found.items() if document is None]
    if missing:
        raise RuntimeError(f"no {', '.join(missing)} of {tenant} to copy")
    return {name: document for name, document in found.items() if document is not None}


async def run_ceiling(
    url: str, database_pid: int, documents: dict[str, dict[str, Any]], writers: int,
    seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """What the gateway's own storage layer sustains on this database: ``writers`` concurrent
    tasks, each on a tenant of its own, store one version after another through
    SettingsRepository.save (history entry, audit entry, document; concurrent writes batched as
    the gateway batches them), starting from the settings they stored last as the gateway
    starts from its cache; no GraphQL, HTTP, validation, diff or subscriber."""
    client = connect(url)
    repository = SettingsRepository(client, "bench_ceiling", ChainKeys(secrets.token_bytes(32)))
    await repository.prepare()
    template = history_entry(documents["history"])
    latencies: list[float] = []
    stop = asyncio.Event()

    async def writer(tenant: str) -> None:
        current = template.settings.model_copy(update={"tenant_id": tenant, "version": 0})
        while not stop.is_set():
            sent = time.perf_counter()
            saved = await repository.save(
                current,
                base_version=current.version,
                actor=template.actor,
                changed_blocks=list(template.changed_blocks),
                changed_paths=list(template.changed_paths),
                audit=documents["history"]["audit"],
            )
            assert isinstance(saved, TenantSettings), saved  # a tenant of its own: no conflict
            current = saved
            latencies.append(time.perf_counter() - sent)

    load = os.getloadavg()[0]
    cpu_client, cpu_database = time.process_time(), cpu_seconds(database_pid)
    ticks = machine_ticks()
    started = time.perf_counter()
    tasks = [asyncio.create_task(writer(f"ceiling-{n}")) for n in range(writers)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    machine_idle = idle_share(ticks, machine_ticks())
    cpu = {
        "client": time.process_time() - cpu_client,
        "database": cpu_seconds(database_pid) - cpu_database,
    }
    await client.close()
    return {
        "configuration": "ceiling: storage layer only",
        "writers": writers,
        "seconds": round(elapsed, 2),
        "writes": len(latencies),
        "writes_per_s": round(len(latencies) / elapsed, 1),
        "write_latency": summarize(latencies),
        "cpu_share": {name: round(used / elapsed, 2) for name, used in cpu.items()},
        "cpu_ms_per_request": {
            name: round(used * 1000 / max(1, len(latencies)), 2) for name, used in cpu.items()
        },
        "load_average_1m": round(load, 2),
        "machine_idle_share": machine_idle,
    }


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(results["configurations"])
    if "ceiling" in results:
        runs.append({**results["ceiling"], "configuration": "ceiling"})
    labels = [f"{run['configuration']}\n{run['writers']} writers" for run in runs]
    colors = {"own tenant": "tab:blue", "one tenant": "tab:orange", "ceiling": "tab:gray"}
    positions = list(range(len(runs)))
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    bars = left.bar(
        positions,
        [run["writes_per_s"] for run in runs],
        color=[colors[run["configuration"]] for run in runs],
    )
    left.bar_label(
        bars,
        [
            f"{run['writes_per_s']:.0f}"
            + (f"\n(+{run['conflicts_per_s']:.0f} conflicts/s)" if run.get("conflicts") else "")
            for run in runs
        ],
    )
    left.axhline(TARGET, color="tab:red", linestyle="--", label=f"target {TARGET}/s")
    left.set_xticks(positions, labels)
    left.set_ylabel("saved writes per second")
    left.set_title("Validated, versioned, audited writes (ceiling: storage layer only)")
    left.legend(loc="upper left")

    series = [
        ("write p50", "write_latency", "p50_ms"),
        ("write p99", "write_latency", "p99_ms"),
        ("response→subscriber p50", "response_to_event", "p50_ms"),
        ("response→subscriber p99", "response_to_event", "p99_ms"),
    ]
    width = 0.8 / len(series)
    for index, (name, measure, percentile) in enumerate(series):
        right.bar(
            [p + (index - (len(series) - 1) / 2) * width for p in positions],
            [run.get(measure, {}).get(percentile, 0) for run in runs],
            width,
            label=name,
        )
    right.set_xticks(positions, labels)
    right.set_ylabel("ms")
    right.set_title("Latency under that load")
    right.legend(loc="upper left", fontsize="small")
    machine = results["machine"]
    figure.suptitle(
        f"{results['command']}  ({machine['cores']} cores, Python {machine['python']}, "
        f"embedded database, {_processes(results.get('gateway_processes', 1))})"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _processes(count: int) -> str:
    return "one gateway process" if count == 1 else f"{count} gateway processes"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--writers", default="16", help="concurrent writers; a comma-separated list runs each"
    )
    parser.add_argument("--seconds", type=float, default=10, help="duration of a configuration")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "writes.json",
        help="the JSON result; the chart goes beside it with the suffix .png",
    )  # fmt: skip
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling run")
    parser.add_argument(
        "--sample", action="store_true",
        help="add a phase with py-spy sampling the gateway; its summary goes in 'profile'",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, help="run the gateway under pyinstrument, its report to PROFILE"
    )
    parser.add_argument(
        "--workers", type=int, default=1,
        help="gateway processes on the one port (serve --workers); the writers' connections "
        "are spread among them by the kernel",
    )  # fmt: skip
    args = parser.parse_args()
    if args.sample and py_spy() is None:
        parser.error("--sample needs py-spy")
    writer_counts = [int(count) for count in args.writers.split(",")]

    results: dict[str, Any] = {
        "benchmark": "writes",
        "command": " ".join(["python", "bench/writes.py", *sys.argv[1:]]),
        "machine": machine(),
        "target_writes_per_s": TARGET,
        "latency_definitions": {
            "write_latency": "request sent to response received, saved writes only",
            "response_to_event": "mutation response arrived to the version's event arrived "
            "(negative when the event came first)",
            "commit_to_event": "the version's changedAt (ms) to its event's arrival",
        },
        "gateway_processes": args.workers,
    }
    with tempfile.TemporaryDirectory() as scratch, EmbeddedMongo(Path(scratch) / "db") as db:
        port = free_port()
        env = {**os.environ, "EHRGW_MONGODB_URL": db.url, "EHRGW_DATA_DIR": scratch}
        serve = ["-m", "ehr_gateway.server.cli", "serve", "--port", str(port)]
        serve += ["--workers", str(args.workers)]
        if args.profile:
            serve = ["-m", "pyinstrument", "-r", "text", "-o", str(args.profile), *serve]
        # Its log (standard output) says when each worker has started.
        log = Path(scratch) / "gateway.log"
        gateway = subprocess.Popen(
            [sys.executable, *serve], env=env, cwd=ROOT,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", lambda body: body.get("changeFeed") == "running")
            # Every worker serving before the writers connect: a connection stays with the
            # worker that accepted it.
            started = time.monotonic()
            while log.read_text(errors="replace").count("Application startup complete") < (
                args.workers if args.workers > 1 else 0
            ):
                if time.monotonic() - started > 120 or gateway.poll() is not None:
                    raise RuntimeError(f"the gateway's workers did not start: {log.read_text()}")
                time.sleep(0.2)
            token = dev_tokens.mint(
                Path(scratch), tenants=["*"], roles=["editor", "service"], subject="bench"
            )
            database_pid = int((db.data_dir / PID_FILE).read_text())
            results.update(
                asyncio.run(
                    run(port, gateway.pid, database_pid, token, writer_counts, args.seconds,
                        args.sample, args.workers)
                )
            )  # fmt: skip
            documents = templates(db.url, f"own-{writer_counts[-1]}-0")
        finally:
            gateway.terminate()
            gateway.wait()
        if not args.no_ceiling:
            results["ceiling"] = asyncio.run(
                run_ceiling(db.url, database_pid, documents, writer_counts[-1], args.seconds)
            )
            print(json.dumps(results["ceiling"]), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, args.out.with_suffix(".png"))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
