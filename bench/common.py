"""What every benchmark shares: the machine it ran on, processes it starts and waits for, and
its chart."""

from __future__ import annotations

import base64
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": datetime.now().isoformat(timespec="seconds"),
    }


def wait_http(
    url: str, ready: Callable[[Any], bool] = lambda body: True, within: float = 60
) -> dict[str, Any]:
    """GET ``url`` until it answers JSON that ``ready`` accepts."""
    deadline = time.monotonic() + within
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            try:
                body: dict[str, Any] = client.get(url, timeout=2).json()
                if ready(body):
                    return body
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def summarize(latencies: Sequence[float], count_key: str = "count") -> dict[str, float]:
    """Percentiles (ms) of latencies given in seconds, and how many there were."""
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
        count_key: len(ordered),
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a gateway's worker processes)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pids: list[int]) -> float:
    """The CPU time so far of these processes together (those still running)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


@contextmanager
def started(command: Sequence[str], **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """A server process from the project root, stopped (SIGTERM) on the way out."""
    process = subprocess.Popen(
        list(command), env={**os.environ, **env}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class ServedGateway:
    """A gateway process (``ehr-gateway serve``) on a loopback port, ready, and a token for it."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    data_dir: Path


# One key per benchmark run (see served_gateway).
BENCH_ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()


@contextmanager
def served_gateway(
    database_url: str,
    database: str,
    data_dir: Path,
    *args: str,
    tenants: Sequence[str] = ("*",),
    roles: Sequence[str] = ("integrator",),
    **env: str,
) -> Iterator[ServedGateway]:
    """``ehr-gateway serve`` (with ``args`` and ``EHRGW_*`` settings ``env``) on the given
    database, once it reports ready, with a development token for ``tenants`` and ``roles``."""
    from ehr_gateway.runtime import dev_tokens
    from ehr_gateway.storage.embedded import free_port

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Gateways on one database are one deployment: they share its key, as replicas must (each
    # verifies what the others stored, and refuses what it cannot verify).
    env.setdefault("EHRGW_ENCRYPTION_KEY", BENCH_ENCRYPTION_KEY)
    with started(
        [sys.executable, "-m", "ehr_gateway.server.cli", "serve", "--port", str(port), *args],
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATA_DIR=str(data_dir),
        EHRGW_DATABASE=database,
        **env,
    ) as process:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", lambda body: body.get("status") == "ready")
        token = dev_tokens.mint(data_dir, tenants=list(tenants), roles=list(roles), subject="bench")
        yield ServedGateway(url, token, process, data_dir)


def render_chart(
    path: Path,
    *,
    title: str,
    labels: Sequence[str],
    latencies: dict[str, Sequence[float]],
    throughput: Sequence[float] | None = None,
    throughput_label: str = "",
    reference: tuple[float, str] | None = None,
    latency_reference: tuple[float, str] | None = None,
) -> None:
    """Throughput per target (with a reference line: a target or a share of the ceiling), when
    given, beside latency percentiles per target (with a reference line: a latency target)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: render to a file
    import matplotlib.pyplot as plt

    positions = range(len(labels))
    if throughput is None:
        figure, right = plt.subplots(1, 1, figsize=(7, 4.5))
    else:
        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
        bars = left.barh(list(positions), throughput, color="#4c72b0")
        left.bar_label(bars, labels=[f"{value:,.0f}" for value in throughput], padding=3)
        left.set_yticks(list(positions), labels)
        left.invert_yaxis()
        left.set_xlabel(throughput_label)
        left.margins(x=0.2)
        if reference is not None:
            left.axvline(reference[0], color="#c44e52", linestyle="--", label=reference[1])
            left.legend(loc="lower right")
    height = 0.8 / max(len(latencies), 1)
    for index, (name, values) in enumerate(latencies.items()):
        right.barh(
            [p + index * height for p in positions], values, height=height, label=f"{name} (ms)"
        )
    if latency_reference is not None:
        right.axvline(
            latency_reference[0], color="#c44e52", linestyle="--", label=latency_reference[1]
        )
    right.set_yticks([p + height * (len(latencies) - 1) / 2 for p in positions], labels)
    right.invert_yaxis()
    right.set_xlabel("latency, ms")
    right.legend(loc="best")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def graphql_post_scope(body: bytes, token: str) -> dict[str, Any]:
    """The ASGI scope of a POST of ``body`` to /graphql with ``token``, for in-process runs."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
        "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"gateway"), (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
    }  # fmt: skip


def print_profile(profiler: Any, min_share: float, html: Path | None) -> None:
    """A pyinstrument profile's call tree down to frames of at least ``min_share`` of the time,
    then self time by function; the whole profile as HTML too when asked."""
    options = {"filter_threshold": min_share}
    print(profiler.output_text(time="percent_of_total", processor_options=options))
    print("Self time by function (flat):")
    flat = profiler.output_text(flat=True, time="percent_of_total", processor_options=options)
    print("\n".join(flat.splitlines()[:40]))
    if html:
        html.write_text(profiler.output_html())


async def time_newest_history_find(
    url: str, database: str, tenant_id: str, requests: int, *, warm_up: int = 5
) -> list[float]:
    """The ceiling of a history page: the driver's own find of a tenant's newest 20 history
    entries (and one more, for hasMore), asked as the gateway asks (storage.tenant_filter: a
    bare tenantId is a scan of the collection on the embedded server, a ceiling slower than the
    page it bounds). Seconds per find, after ``warm_up`` finds."""
    from pymongo import AsyncMongoClient

    from ehr_gateway.storage.repository import HISTORY

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    history = client[database][HISTORY]
    try:
        latencies = []
        for n in range(warm_up + requests):
            started_at = time.perf_counter()
            rows = await history.find(
                {"tenantId": {"$eq": tenant_id}}, sort=[("version", -1)], limit=21
            ).to_list()
            if n >= warm_up:
                latencies.append(time.perf_counter() - started_at)
            assert rows
        return latencies
    finally:
        await client.close()
