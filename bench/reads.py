"""Read benchmark: the admin page's query for a tenant's full Epic settings (about 60 fields
through the unions) against a running gateway, side by side, in the same run, with the ceiling
of this machine: a bare Starlette route that returns the same response as pre-serialised JSON.

    python bench/reads.py                        # one gateway worker, 10 s per target
    python bench/reads.py --workers 2 --seconds 20
    python bench/reads.py --no-response-cache      # the ceiling and the uncached targets only
    python bench/reads.py --rounds 3 --seconds 8   # each target 3 times, alternating; medians

The load generator is wrk (C, one thread, 32 connections, keep-alive) with a Lua script that
POSTs the query with a bearer token; it runs on the same machine, over loopback. Starts its own
embedded database, the gateway (``ehr-gateway serve``) and the ceiling app (uvicorn, same loop
and HTTP parser), and writes bench/results/reads.json and bench/results/reads.png.

Targets, each measured after a warm-up:
- ceiling: the bare route;
- the bare route on the gateway's own HTTP protocol (uvicorn's, writing each answer's head with
  its body in one write, server.head_with_body);
- gateway: the gateway as configured by default (response cache on, access log on);
- gateway, access log off: the same with EHRGW_ACCESS_LOG=false, what the access line costs;
- gateway, response cache off: every request parsed, validated and executed (with the parse
  and validation caches and the in-process settings cache), the settings written by the
  compiled read plan (gql.compiled_reads);
- gateway, response cache off, generic execution: the same with EHRGW_COMPILED_READS=false,
  every field through graphql-core;
- gateway, N workers (with --workers N > 1);
- Apollo Server (Node, one process, no cache) serving this project's schema.graphql with
  resolvers that return the gateway's answer (bench/js/apollo_reads.mjs; install it with
  ``npm ci --prefix bench/js``): the same GraphQL work by a common server, for the uncached
  targets to be compared with.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    machine,
    process_tree,
    render_chart,
    served_gateway,
    started,
    tree_cpu_seconds,
    wait_http,
)
from ehr_gateway.storage.embedded import EmbeddedMongo, free_port  # noqa: E402
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER  # noqa: E402
from tests.gql.test_round_trip import (  # noqa: E402
    EPIC_FHIR,
    EPIC_HEADERS,
    EPIC_OAUTH,
    EPIC_SETTINGS,
)

APOLLO_DIR = ROOT / "bench" / "js"
APOLLO_SCRIPT = APOLLO_DIR / "apollo_reads.mjs"
TENANT = "bench-reads"
SAVE_EPIC = """
mutation Save($tenantId: ID!, $headers: HeaderSettingsInput!, $fhir: FhirSettingsInput!,
              $ehr: EhrSettingsInput!, $oauth: OAuthSettingsInput!) {
  h: updateHeaderSettings(tenantId: $tenantId, input: $headers) { __typename }
  f: updateFhirSettings(tenantId: $tenantId, input: $fhir) { __typename }
  e: updateEhrSettings(tenantId: $tenantId, input: $ehr) { __typename }
  o: updateOAuthSettings(tenantId: $tenantId, input: $oauth) { __typename }
}
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {authorization}
"""
_REQUESTS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def seed(url: str, token: str) -> bytes:
    """An Epic tenant with every block filled in; the response body the read returns."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        chosen = client.post(
            "/graphql",
            json={"query": SELECT_PROVIDER, "variables": {"tenantId": TENANT, "provider": "EPIC"}},
        ).json()
        assert chosen["data"]["selectEhrProvider"]["__typename"] == "SettingsSaved", chosen
        saved = client.post(
            "/graphql", json={"query": SAVE_EPIC, "variables": seed_variables()}
        ).json()
        assert all(r["__typename"] == "SettingsSaved" for r in saved["data"].values()), saved
        read = client.post("/graphql", json=read_request())
        body = read.content
        assert "errors" not in read.json(), body
        return body


def seed_variables() -> dict[str, Any]:
    return {
        "tenantId": TENANT,
        "headers": {"epic": EPIC_HEADERS},
        "fhir": {"epic": EPIC_FHIR},
        "ehr": {"epic": EPIC_SETTINGS},
        "oauth": {"epic": EPIC_OAUTH},
    }


def read_request() -> dict[str, Any]:
    return {"query": INTEGRATION_SETTINGS, "variables": {"tenantId": TENANT}}


def wrk(
    url: str, token: str, seconds: int, connections: int, scratch: Path, server_pid: int
) -> dict[str, Any]:
    """wrk's throughput and latency, and the server process's CPU time per request: a busy
    machine lowers the first two, hardly the third."""
    script = scratch / "read.lua"
    script.write_text(
        WRK_SCRIPT.format(
            body=json.dumps(json.dumps(read_request())),
            authorization=json.dumps(f"Bearer {token}"),
        )
    )
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
        f"{url}/graphql",
    ]  # fmt: skip
    subprocess.run([*command[:3], "-d2s", *command[4:]], check=True, capture_output=True)  # warm
    server = process_tree(server_pid)  # with its workers, if any
    cpu_before = tree_cpu_seconds(server)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    cpu = tree_cpu_seconds(server) - cpu_before
    percentiles = {
        f"p{p}_ms": round(float(value) * _UNIT_MS[unit], 3)
        for p, value, unit in _PERCENTILE.findall(output)
    }
    requests = _REQUESTS.search(output)
    assert requests, output
    total = _TOTAL.search(output)
    assert total, output
    non_2xx = _NON_2XX.search(output)
    socket_errors = _ERRORS.search(output)
    return {
        "requests_per_s": round(float(requests.group(1))),
        **percentiles,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(0) if socket_errors else None,
        "server_cpu_us_per_request": round(cpu / int(total.group(1)) * 1e6, 1),
    }


def run_gateway(
    db: EmbeddedMongo, scratch: Path, label: str, seconds: int, *args: str, **env: str
) -> tuple[dict[str, Any], bytes]:
    data_dir = scratch / label.replace(" ", "-").replace(",", "")
    with served_gateway(
        db.url, "bench", data_dir, *args, tenants=[TENANT], roles=["integrator", "service"], **env
    ) as gateway:
        body = seed(gateway.url, gateway.token)
        if seconds <= 0:  # seeded only
            return {"target": label}, body
        return {
            "target": label,
            **wrk(gateway.url, gateway.token, seconds, 32, scratch, gateway.process.pid),
        }, body


# The gateway's own HTTP protocol (uvicorn's, writing each answer's head with its body).
GATEWAY_PROTOCOL = "ehr_gateway.server.http_protocol:DeadlineHttpToolsProtocol"


def run_ceiling(
    body: bytes, scratch: Path, seconds: int, http: str | None = None
) -> dict[str, Any]:
    """The bare route, on uvicorn's own HTTP protocol or on ``http`` (an import path)."""
    response_file = scratch / "ceiling-response.json"
    response_file.write_bytes(body)
    port = free_port()
    protocol = [] if http is None else ["--http", http]
    with started(
        [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log", *protocol],
        BENCH_READ_RESPONSE=str(response_file),
    ) as process:  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz")
        served = httpx.post(f"{url}/graphql", json=read_request()).content
        assert served == body, "the ceiling must serve the gateway's exact response"
        return {
            "target": "ceiling (bare Starlette route)"
            if http is None
            else "bare Starlette route on the gateway's HTTP protocol",
            **wrk(url, "-", seconds, 32, scratch, process.pid),
        }


def run_apollo(body: bytes, scratch: Path, seconds: int) -> dict[str, Any]:
    """Apollo Server (Node) on this project's schema.graphql, resolving the gateway's answer."""
    response_file = scratch / "apollo-response.json"
    response_file.write_bytes(body)
    port = free_port()
    with started(
        ["node", str(APOLLO_SCRIPT), "--port", str(port), "--response", str(response_file)],
        NODE_ENV="production",
    ) as process:
        url = f"http://127.0.0.1:{port}"
        served = _post_when_up(f"{url}/graphql", read_request())
        assert served.get("data") == json.loads(body)["data"], (
            "Apollo Server must answer the gateway's data",
            served,
        )
        return {
            "target": "Apollo Server (Node), no cache",
            **wrk(url, "-", seconds, 32, scratch, process.pid),
        }


def _post_when_up(url: str, request: dict[str, Any], within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        try:
            answer: dict[str, Any] = httpx.post(url, json=request, timeout=5).json()
            return answer
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def apollo_missing() -> str | None:
    """Why the Apollo target cannot run here, or None."""
    if shutil.which("node") is None:
        return "bench/reads.py needs node on the PATH for its Apollo Server target"
    if not (APOLLO_DIR / "node_modules" / "@apollo" / "server").is_dir():
        return (
            "bench/reads.py needs Apollo Server for its comparison target: "
            "run `npm ci --prefix bench/js` (or pass --no-apollo)"
        )
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every target this many times, in alternating order; report medians",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--no-response-cache",
        action="store_true",
        help="only the ceiling and the targets with the response cache off",
    )
    parser.add_argument(
        "--no-apollo",
        action="store_true",
        help="leave out the Apollo Server target (needs node and `npm ci --prefix bench/js`)",
    )
    args = parser.parse_args()
    if args.out is None:
        name = "reads-uncached.json" if args.no_response_cache else "reads.json"
        args.out = ROOT / "bench" / "results" / name
    if shutil.which("wrk") is None:
        sys.exit("bench/reads.py needs wrk (the HTTP load generator) on the PATH")
    if not args.no_apollo and (missing := apollo_missing()):
        sys.exit(missing)

    load_before = _load_average()
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as db:
        scratch = Path(tmp)
        # The response every target serves: the ceiling and Apollo serve these very bytes.
        body = run_gateway(db, scratch, "seed", 0)[1]
        plan = targets_to_run(db, scratch, body, args)
        for number in range(args.rounds):
            # Every other round runs the targets in the opposite order, so that a machine that
            # grows busier or quieter during the run weighs on no target more than another.
            order = plan if number % 2 == 0 else plan[::-1]
            measured = {label: run() for label, run in order}
            rounds.append([measured[label] for label, _ in plan])
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    targets = summarise_rounds(rounds)
    ceiling = targets[0]["requests_per_s"]
    results: dict[str, Any] = {
        "benchmark": "read: full Epic settings query",
        "command": " ".join(["python", "bench/reads.py", *sys.argv[1:]]),
        "load_generator": "wrk -t1 -c32 (Lua script POSTing the query), loopback",
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "response_bytes": len(body),
        "machine": machine(),
        "rounds": len(rounds),
        "targets": targets,
    }
    if len(rounds) > 1:
        results["each_round"] = rounds
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    render_chart(
        args.out.with_suffix(".png"),
        title=f"Read: full Epic settings query ({results['machine']['cores']} cores)",
        labels=[t["target"] for t in targets],
        throughput=[t["requests_per_s"] for t in targets],
        throughput_label="requests/s",
        latencies={"p50": [t["p50_ms"] for t in targets], "p99": [t["p99_ms"] for t in targets]},
        reference=(ceiling * 0.5, "50% of the ceiling"),
    )
    print(json.dumps(results, indent=2))


Target = tuple[str, Callable[[], dict[str, Any]]]


def targets_to_run(
    db: EmbeddedMongo, scratch: Path, body: bytes, args: argparse.Namespace
) -> list[Target]:
    """Each target's label and what measures it once; the ceiling first."""
    seconds = args.seconds

    def gateway(label: str, *extra: str, **env: str) -> Target:
        return label, lambda: run_gateway(db, scratch, label, seconds, *extra, **env)[0]

    plan: list[Target] = [("ceiling", lambda: run_ceiling(body, scratch, seconds))]
    # The same route with the head of each answer written with its body, as the gateway
    # writes it: how much of the gateway's lead over the ceiling is that alone.
    plan.append(
        ("ceiling, gateway protocol", lambda: run_ceiling(body, scratch, seconds, GATEWAY_PROTOCOL))
    )
    if not args.no_response_cache:
        plan.append(gateway("gateway"))
        # What the access log costs: the same with no line per request.
        plan.append(gateway("gateway, access log off", EHRGW_ACCESS_LOG="false"))
    if not args.no_apollo:
        plan.append(("apollo", lambda: run_apollo(body, scratch, seconds)))
    plan.append(gateway("gateway, response cache off", EHRGW_RESPONSE_CACHE="false"))
    # (Each target saves the tenant again, so versions differ; tests/gql/
    # test_compiled_reads.py proves both executions answer the same bytes.)
    plan.append(
        gateway(
            "gateway, response cache off, generic execution",
            EHRGW_RESPONSE_CACHE="false",
            EHRGW_COMPILED_READS="false",
        )
    )
    if args.workers > 1 and not args.no_response_cache:
        plan.append(gateway(f"gateway, {args.workers} workers", "--workers", str(args.workers)))
    return plan


def summarise_rounds(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per target, its median over the rounds of each figure, and of its share of the ceiling
    measured in the same round (the ceiling is each round's first target)."""
    summary = []
    for index, first in enumerate(rounds[0]):
        runs = [each[index] for each in rounds]
        shares = [
            run["requests_per_s"] / each[0]["requests_per_s"]
            for run, each in zip(runs, rounds, strict=True)
        ]
        target: dict[str, Any] = {"target": first["target"]}
        for key, value in first.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                target[key] = _median([run[key] for run in runs])
            elif key != "target":
                target[key] = [run[key] for run in runs] if len(runs) > 1 else value
        target["share_of_ceiling"] = round(statistics.median(shares), 3)
        if len(runs) > 1:
            target["share_of_ceiling_each_round"] = [round(share, 3) for share in shares]
        summary.append(target)
    return summary


def _median(values: list[float]) -> float:
    middle = statistics.median(values)
    return round(middle, 3) if isinstance(middle, float) and not middle.is_integer() else middle


def _load_average() -> str:
    """The 1, 5 and 15 minute load averages: a run on a busy machine shows as one."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
