"""Where a settings write spends the gateway's time: the write benchmark's mutation
(bench/writes.py: a new Epic context at the version last seen), sent straight to the ASGI app
in-process (no network, no HTTP client) by 16 concurrent writers on tenants of their own, under
pyinstrument.

    python bench/profile_writes.py
    python bench/profile_writes.py --writes 3000 --html profile.html
    python bench/profile_writes.py --payload settings   # the whole settings in the payload
    python bench/profile_writes.py --compare 5          # with and without the fast path

Prints writes per second of this process's CPU time (the gateway's own part of each write, its
database in another process), the call tree down to frames that take at least --min-share of the
time, and self time by function. ``--compare`` instead runs two apps in this one process, one
answering block updates by the fast path (gql.fast_writes), the other by the generic path
(its fast path told it knows no document), in alternating rounds, so that a busy machine
weighs on both alike; it prints each one's writes per CPU second, round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from starlette.types import ASGIApp, Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import graphql_post_scope, print_profile  # noqa: E402
from bench.writes import SELECT_EPIC, WRITE  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.server.app import create_app, freeze_startup_heap  # noqa: E402
from ehr_gateway.server.config import GatewayConfig  # noqa: E402
from ehr_gateway.server.state import gateway_of  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from tests.documents import RESULT_FIELDS  # noqa: E402

WRITERS = 16
# The same write with the whole settings in its payload, as the console's forms select them.
WRITE_SELECTING_SETTINGS = (
    """
mutation Write($tenantId: ID!, $context: String!, $expected: Int!) {
  updateEhrSettings(
    tenantId: $tenantId, input: {epic: {context: $context}}, expectedVersion: $expected
  ) {
    ...ResultFields
  }
}
"""
    + RESULT_FIELDS
)
PAYLOADS = {"version": WRITE, "settings": WRITE_SELECTING_SETTINGS}


async def post(app: ASGIApp, token: str, request: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(request).encode()
    scope = graphql_post_scope(body, token)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    answer: dict[str, Any] = json.loads(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )
    return answer


async def writer(
    app: ASGIApp, token: str, tenant: str, writes: int, versions: dict[str, int], document: str
) -> None:
    """``writes`` writes of a new context, each at the version the previous one saved."""
    for _ in range(writes):
        version = versions[tenant]
        variables = {"tenantId": tenant, "context": f"{tenant}-{version}", "expected": version}
        answer = await post(app, token, {"query": document, "variables": variables})
        saved = answer["data"]["updateEhrSettings"]
        assert saved["__typename"] == "SettingsSaved", answer
        versions[tenant] = saved["settings"]["version"]


async def profile(
    database_url: str, data_dir: Path, writes: int, document: str
) -> tuple[float, Profiler]:
    config = GatewayConfig(
        mongodb_url=database_url, database="profile", data_dir=data_dir, access_log=False
    )
    app = create_app(config)
    freeze_startup_heap()  # as a served process does
    tenants = [f"writer-{n}" for n in range(WRITERS)]
    token = dev_tokens.mint(data_dir, tenants=tenants, roles=["integrator"])
    async with app.router.lifespan_context(app):
        for tenant in tenants:
            answer = await post(
                app, token, {"query": SELECT_EPIC, "variables": {"tenantId": tenant}}
            )
            assert answer["data"]["selectEhrProvider"]["__typename"] == "SettingsSaved", answer

        versions = dict.fromkeys(tenants, 1)

        async def run(each: int) -> None:
            await asyncio.gather(
                *(writer(app, token, t, each, versions, document) for t in tenants)
            )

        await run(20)  # warm the caches
        per_writer = max(1, writes // WRITERS)
        cpu_started = time.process_time()
        await run(per_writer)
        cpu_rate = per_writer * WRITERS / (time.process_time() - cpu_started)
        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        await run(per_writer)
        profiler.stop()
    return cpu_rate, profiler


async def compare(
    database_url: str, data_dir: Path, writes: int, rounds: int, document: str
) -> dict[str, list[float]]:
    """Writes per CPU second of the fast path and of the generic path, ``rounds`` alternating
    rounds of ``writes`` writes each."""
    tenants = [f"writer-{n}" for n in range(WRITERS)]
    token = dev_tokens.mint(data_dir, tenants=tenants, roles=["integrator"])
    apps = {}
    for name in ("fast path", "generic path"):
        config = GatewayConfig(
            mongodb_url=database_url, database=f"compare-{name.split()[0]}", data_dir=data_dir,
            access_log=False,
        )  # fmt: skip
        apps[name] = create_app(config)
    rates: dict[str, list[float]] = {name: [] for name in apps}
    versions = {name: dict.fromkeys(tenants, 1) for name in apps}
    async with (
        apps["fast path"].router.lifespan_context(apps["fast path"]),
        apps["generic path"].router.lifespan_context(apps["generic path"]),
    ):
        generic = gateway_of(apps["generic path"]).schema.fast_writes
        assert generic is not None
        generic.knows = lambda text, name: False  # type: ignore[method-assign]
        for app in apps.values():
            for tenant in tenants:
                request = {"query": SELECT_EPIC, "variables": {"tenantId": tenant}}
                await post(app, token, request)

        async def run(name: str, each: int) -> None:
            await asyncio.gather(
                *(writer(apps[name], token, t, each, versions[name], document) for t in tenants)
            )

        for name in apps:
            await run(name, 20)  # warm the caches
        per_writer = max(1, writes // WRITERS)
        for _ in range(rounds):
            for name in apps:
                started = time.process_time()
                await run(name, per_writer)
                rates[name].append(per_writer * WRITERS / (time.process_time() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=1600)
    parser.add_argument("--min-share", type=float, default=0.03)
    parser.add_argument("--html", type=Path, help="also write the full profile as HTML")
    parser.add_argument(
        "--payload", choices=sorted(PAYLOADS), default="version",
        help="what the write selects: the new version (the write benchmark's) or the whole "
        "settings",
    )  # fmt: skip
    parser.add_argument(
        "--compare", type=int, metavar="ROUNDS",
        help="compare the fast path for writes with the generic path over ROUNDS alternating "
        "rounds of --writes writes each (no profile)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.compare:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as db:
            rates = asyncio.run(
                compare(db.url, Path(tmp), args.writes, args.compare, PAYLOADS[args.payload])
            )
        for name, each in rates.items():
            listed = ", ".join(f"{rate:.0f}" for rate in each)
            print(f"{name}: median {statistics.median(each):.0f} writes per CPU second ({listed})")
        return
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as db:
        cpu_rate, profiler = asyncio.run(
            profile(db.url, Path(tmp), args.writes, PAYLOADS[args.payload])
        )
    print(f"{cpu_rate:.0f} writes per second of the gateway process's CPU time\n")
    print_profile(profiler, args.min_share, args.html)


if __name__ == "__main__":
    main()
