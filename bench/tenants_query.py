"""Tenant directory benchmark: the `tenants` query over 100,000 tenants on the embedded database,
a first page and deep pages, against two ceilings measured in the same run.

    python bench/tenants_query.py                     # 100,000 tenants, 300 requests per case
    python bench/tenants_query.py --tenants 20000 --requests 100

Starts its own embedded database and gateway (``ehr-gateway serve``, development mode). Seeding:
the gateway itself writes a few template tenants (Epic complete and incomplete, Athena, Cerner,
Ellkay, one with no EHR) through GraphQL, so each stored document and its directory row are what
the gateway stores; the script then stores copies of them with insert_many (1,000 at a time),
each as a save stores a tenant's first version (history entry, audit entry, sealed document and
directory row, built by the storage layer's own builder with the gateway's keys), with its own
tenant id and last change.

Each case is POSTed one request at a time over one keep-alive connection (latency, not
throughput), after a warm-up:
- first page: ``tenants(first: 50)``, and filtered (by EHR, by readiness, changed since);
- deep pages: the same, after a cursor 95% of the way through the directory;
- ceilings: the same indexed find straight on the driver (no GraphQL, HTTP or gateway), and a
  bare Starlette route (uvicorn, same loop and parser) returning the gateway's response bytes.

Writes bench/results/tenants_query.json and .png. Exits non-zero when a page's p99 is over
50 ms, or a deep page's p99 over twice the first page's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import ASCENDING, AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BENCH_ENCRYPTION_KEY,
    machine,
    render_chart,
    served_gateway,
    started,
    summarize,
    wait_http,
)
from bench.writes import cpu_seconds  # noqa: E402
from ehr_gateway.ehr.common import EhrProvider  # noqa: E402
from ehr_gateway.ehr.identifiers import IdentifierDefaults  # noqa: E402
from ehr_gateway.resolvers.tenant_directory import decode_cursor, encode_cursor  # noqa: E402
from ehr_gateway.storage.audit import AUDIT, Head, chained_entry, version_row  # noqa: E402
from ehr_gateway.storage.chain import GENESIS  # noqa: E402
from ehr_gateway.storage.directory import (  # noqa: E402
    BY_CHANGE,
    BY_ID,
    DIRECTORY,
    PROJECTION,
    DirectoryQuery,
    change_key,
    find_arguments,
)
from ehr_gateway.storage.embedded import EmbeddedMongo, free_port  # noqa: E402
from ehr_gateway.storage.repository import (  # noqa: E402
    HISTORY,
    SETTINGS,
    SettingsRepository,
    version_write,
)
from ehr_gateway.storage.secrets import ChainKeys, SecretBox  # noqa: E402

DATABASE = "bench_tenants"
P99_TARGET_MS = 50.0
PAGE = 50
TENANTS_QUERY = """
query Tenants($first: Int, $after: String, $provider: EhrProvider, $ready: Boolean,
              $changedSince: DateTime) {
  tenants(first: $first, after: $after, provider: $provider, ready: $ready,
          changedSince: $changedSince) {
    items { tenantId provider version ready missingCount changedAt changedBy }
    pageInfo { endCursor hasNextPage }
  }
}
"""
CONNECTION = {
    "name": "EHR",
    "baseUrl": "https://ehr.example.test/fhir",
    "environment": "PRODUCTION",
}
# The template tenants, as GraphQL writes: (root field, arguments) in order.
TEMPLATES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "epic-incomplete": [("selectEhrProvider", {"provider": "EPIC"})],
    "epic-configured": [
        ("selectEhrProvider", {"provider": "EPIC"}),
        ("updateHeaderSettings", {"input": {"epic": {
            "epicClientId": "client-0a1b2c", "epicUserId": "CCUSER",
            "epicUserIdType": "Internal"}}}),
        ("updateFhirSettings", {"input": {"epic": {
            "mrnIdentifier": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"}}}),
        ("updateEhrSettings", {"input": {"epic": {
            "context": "Scheduling", "jkuServerUrl": "https://ehr.example.test/jwks.json",
            "jwtIssuerUrl": "https://ehr.example.test/issuer"}}}),
        ("createExternalGateway", {"connection": CONNECTION}),
    ],
    "athena-ready": [
        ("selectEhrProvider", {"provider": "ATHENA"}),
        ("updateEhrSettings", {"input": {"athena": {"practiceId": "195900"}}}),
        ("createExternalGateway", {"connection": CONNECTION}),
    ],
    "cerner-ready": [
        ("selectEhrProvider", {"provider": "CERNER"}),
        ("updateFhirSettings", {"input": {"cerner": {
            "mrnIdentifier": "urn:oid:2.16.840.1.113883.6.1000"}}}),
        ("createExternalGateway", {"connection": CONNECTION}),
    ],
    "ellkay-incomplete": [("selectEhrProvider", {"provider": "ELLKAY"})],
    "no-ehr": [("updatePatientRestriction", {"expression": "age < 18"})],
}  # fmt: skip
_ARGUMENT_TYPES = {
    "provider": "EhrProvider!",
    "input": {
        "updateHeaderSettings": "HeaderSettingsInput!",
        "updateFhirSettings": "FhirSettingsInput!",
        "updateEhrSettings": "EhrSettingsInput!",
    },
    "connection": "ExternalGatewayConnectionInput!",
    "expression": "String",
}


def _write_document(field: str, arguments: dict[str, Any]) -> str:
    declared, passed = ["$tenantId: ID!"], ["tenantId: $tenantId"]
    for name in arguments:
        kind = _ARGUMENT_TYPES[name]
        declared.append(f"${name}: {kind[field] if isinstance(kind, dict) else kind}")
        passed.append(f"{name}: ${name}")
    return (
        f"mutation Seed({', '.join(declared)}) {{ {field}({', '.join(passed)}) {{ __typename }} }}"
    )


def write_templates(client: httpx.Client) -> None:
    for name, writes in TEMPLATES.items():
        for field, arguments in writes:
            answer = client.post(
                "/graphql",
                json={
                    "query": _write_document(field, arguments),
                    "variables": {"tenantId": f"template-{name}", **arguments},
                },
            ).json()
            saved = (answer.get("data") or {}).get(field) or {}
            assert saved.get("__typename") == "SettingsSaved", (name, field, answer)


async def seed(url: str, tenants: int, keys: ChainKeys, first: int = 0) -> dict[str, Any]:
    """Copies of the template tenants, numbered ``first`` up to ``tenants``; what was seeded.
    Each copy is stored as a save stores a tenant's first version, with the storage layer's own
    builder (storage.repository.version_write) and the gateway's chain key ``keys``: its
    history entry (chained), its audit entry, and its settings document (sealed, with its
    sealed directory row). A copied document alone would name another tenant in its seal and
    its row: it would be neither listed nor read."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        repository = SettingsRepository(client, DATABASE, keys)
        db = repository.database
        template_ids = sorted(f"template-{name}" for name in TEMPLATES)
        templates = [await repository.get(template_id) for template_id in template_ids]
        assert all(t is not None for t in templates), template_ids
        rows = await db[SETTINGS].find({"_id": {"$in": template_ids}}).to_list()
        readiness = {row["_id"]: bool(row[DIRECTORY]["ready"]) for row in rows}
        defaults = IdentifierDefaults()
        # Every copy changed in the last ~100 days, in an order unrelated to its id.
        start = datetime.now(UTC) - timedelta(days=100)
        started_at = time.perf_counter()
        batches: dict[str, list[dict[str, Any]]] = {SETTINGS: [], HISTORY: [], AUDIT: []}

        async def flush() -> None:
            for collection in (HISTORY, AUDIT, SETTINGS):  # a document follows its entries
                if batches[collection]:
                    await db[collection].insert_many(batches[collection], ordered=False)
                    batches[collection] = []

        for n in range(first, tenants):
            template = templates[n % len(templates)]
            assert template is not None
            tenant_id = f"tenant-{n:06d}"
            changed_at = start + timedelta(seconds=(n * 7919) % (100 * 86400))
            changed_at = changed_at.replace(microsecond=changed_at.microsecond // 1000 * 1000)
            write = version_write(
                template.model_copy(update={"tenant_id": tenant_id}),
                base_version=0, prev=GENESIS, at=changed_at, actor="bench", changed_blocks=[],
                changed_paths=[], keys=keys, identifier_defaults=defaults,
            )  # fmt: skip
            batches[HISTORY].append(write.entry)
            batches[AUDIT].append(
                chained_entry(version_row(write.entry), Head(tenant_id, 0, GENESIS), keys)
            )
            batches[SETTINGS].append(write.document)
            if len(batches[SETTINGS]) == 1000:
                await flush()
        await flush()
        ready = sum(
            1 for n in range(first, tenants) if readiness[template_ids[n % len(template_ids)]]
        )
        return {
            "tenants": tenants,
            "ready": ready,
            "templates": template_ids,
            "document_bytes": [len(json.dumps(row, default=str)) for row in rows],
            "seconds": round(time.perf_counter() - started_at, 1),
        }
    finally:
        await client.close()


def cases(tenants: int, oldest: datetime) -> dict[str, dict[str, Any]]:
    """The query variables of each case; deep pages start 95% of the way through."""
    deep_id = f"tenant-{int(tenants * 0.95):06d}"
    since = oldest + timedelta(days=1)
    deep_change = change_key(oldest + timedelta(days=95), deep_id)
    return {
        "first page": {"first": PAGE},
        "deep page": {"first": PAGE, "after": encode_cursor(BY_ID, deep_id)},
        "first page, provider": {"first": PAGE, "provider": "CERNER"},
        "deep page, provider": {
            "first": PAGE,
            "provider": "CERNER",
            "after": encode_cursor(BY_ID, deep_id),
        },
        "first page, ready": {"first": PAGE, "ready": True},
        "deep page, ready": {"first": PAGE, "ready": True, "after": encode_cursor(BY_ID, deep_id)},
        "first page, changed since": {"first": PAGE, "changedSince": since.isoformat()},
        "deep page, changed since": {
            "first": PAGE,
            "changedSince": since.isoformat(),
            "after": encode_cursor(BY_CHANGE, deep_change),
        },
    }


def time_http(
    client: httpx.Client, body: dict[str, Any], requests: int, pids: dict[str, int] | None = None
) -> tuple[list[float], bytes, dict[str, float]]:
    """Latencies of ``requests`` POSTs of ``body``, the last answer, and the CPU time each
    process of ``pids`` spent per request (ms): unlike latency, hardly changed by a busy
    machine."""
    for _ in range(20):  # warm-up
        response = client.post("/graphql", json=body)
    latencies = []
    cpu_before = {name: cpu_seconds(pid) for name, pid in (pids or {}).items()}
    for _ in range(requests):
        started_at = time.perf_counter()
        response = client.post("/graphql", json=body)
        latencies.append(time.perf_counter() - started_at)
    cpu = {
        name: round((cpu_seconds(pid) - cpu_before[name]) * 1000 / requests, 2)
        for name, pid in (pids or {}).items()
    }
    assert response.status_code == 200, response.text
    return latencies, response.content, cpu


def driver_query(variables: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The find the gateway makes for ``variables``, for staff (storage.directory)."""
    since = variables.get("changedSince")
    order = BY_CHANGE if since else BY_ID
    return find_arguments(
        DirectoryQuery(
            tenants=None,
            provider=EhrProvider(variables["provider"]) if "provider" in variables else None,
            ready=variables.get("ready"),
            changed_since=datetime.fromisoformat(since) if since else None,
            after=decode_cursor(variables["after"], order) if "after" in variables else None,
            limit=PAGE,
        )
    )


async def time_driver(url: str, variables: dict[str, Any], requests: int) -> list[float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    found, order = driver_query(variables)
    settings = client[DATABASE][SETTINGS]
    try:
        latencies = []
        for n in range(20 + requests):
            started_at = time.perf_counter()
            rows = await settings.find(
                found, projection=PROJECTION, sort=[(order, ASCENDING)], limit=PAGE + 1
            ).to_list()
            if n >= 20:
                latencies.append(time.perf_counter() - started_at)
        assert rows, variables
        return latencies
    finally:
        await client.close()


def time_ceiling(body: bytes, request: dict[str, Any], scratch: Path, requests: int) -> list[float]:
    response_file = scratch / "ceiling-response.json"
    response_file.write_bytes(body)
    port = free_port()
    with started(
        [sys.executable, "-m", "uvicorn", "bench.ceiling_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        BENCH_READ_RESPONSE=str(response_file),
    ):  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz")
        with httpx.Client(base_url=url, timeout=30) as client:
            latencies, served, _ = time_http(client, request, requests)
    assert served == body, "the ceiling must serve the gateway's exact response"
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "tenants_query.json"
    )
    args = parser.parse_args()
    targets: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as db:
        scratch = Path(tmp)
        with served_gateway(
            db.url, DATABASE, scratch / "gateway", EHRGW_ACCESS_LOG="false"
        ) as gateway:
            url = gateway.url
            pids = {"gateway": gateway.process.pid, "database": db.pid or 0}
            headers = {"authorization": f"Bearer {gateway.token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                write_templates(client)
                keys = SecretBox.from_base64(BENCH_ENCRYPTION_KEY).chain
                seeded = asyncio.run(seed(db.url, args.tenants, keys))
                print(json.dumps({"seeded": seeded}), flush=True)
                oldest = datetime.now(UTC) - timedelta(days=100)
                load_before = os.getloadavg()[0]
                for label, variables in cases(args.tenants, oldest).items():
                    request = {"query": TENANTS_QUERY, "variables": variables}
                    latencies, body, cpu = time_http(client, request, args.requests, pids)
                    answer = json.loads(body)
                    assert "errors" not in answer, answer
                    items = answer["data"]["tenants"]["items"]
                    assert items, label  # a full page with the default 100,000 tenants
                    driver = asyncio.run(time_driver(db.url, variables, args.requests))
                    target = {
                        "case": label,
                        "gateway": summarize(latencies, "requests"),
                        "ceiling_driver_find": summarize(driver, "requests"),
                        "cpu_ms_per_request": cpu,
                        "response_bytes": len(body),
                    }
                    if label == "first page":
                        target["ceiling_bare_route"] = summarize(
                            time_ceiling(body, request, scratch, args.requests), "requests"
                        )
                    targets.append(target)
                    print(json.dumps(target), flush=True)
                load_during = [round(load_before, 2), round(os.getloadavg()[1], 2)]
    results: dict[str, Any] = {
        "benchmark": "tenants query over the embedded database",
        # The machine's load while the cases ran: the gateway, the database and the client share
        # its cores, so a busy machine shows in every figure, ceilings included.
        "load_average_during": load_during,
        "command": " ".join(["python", "bench/tenants_query.py", *sys.argv[1:]]),
        "client": "httpx, one keep-alive connection, one request at a time, loopback",
        "page_size": PAGE,
        "seeded": seeded,
        "p99_target_ms": P99_TARGET_MS,
        "machine": machine(),
        "targets": targets,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    render_chart(
        args.out.with_suffix(".png"),
        title=f"tenants query, {args.tenants:,} tenants ({results['machine']['cores']} cores)",
        labels=[t["case"] for t in targets],
        latencies={
            "gateway p50": [t["gateway"]["p50_ms"] for t in targets],
            "gateway p99": [t["gateway"]["p99_ms"] for t in targets],
            "driver find p99": [t["ceiling_driver_find"]["p99_ms"] for t in targets],
        },
        latency_reference=(P99_TARGET_MS, "p99 target"),
    )
    print(json.dumps(results, indent=2))
    first = targets[0]["gateway"]["p99_ms"]
    slow = [t["case"] for t in targets if t["gateway"]["p99_ms"] > P99_TARGET_MS]
    if slow:
        sys.exit(f"p99 over {P99_TARGET_MS} ms: {slow}")
    deep = targets[1]["gateway"]["p99_ms"]
    if deep > 2 * first:
        sys.exit(f"a deep page's p99 ({deep} ms) is over twice the first page's ({first} ms)")


if __name__ == "__main__":
    main()
