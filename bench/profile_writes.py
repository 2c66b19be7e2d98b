"""Where a settings write spends the gateway's time: the write benchmark's mutation
(bench/writes.py: a new Epic context at the version last seen), sent straight to the ASGI app
in-process (no network, no HTTP client) by 16 concurrent writers on tenants of their own, under
pyinstrument.

    python bench/profile_writes.py
    python bench/profile_writes.py --writes 3000 --html profile.html
    python bench/profile_writes.py --payload settings   # the whole settings in the payload

Prints writes per second of this process's CPU time (the gateway's own part of each write, its
database in another process), the call tree down to frames that take at least --min-share of the
time, and self time by function.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as db:
        cpu_rate, profiler = asyncio.run(
            profile(db.url, Path(tmp), args.writes, PAYLOADS[args.payload])
        )
    print(f"{cpu_rate:.0f} writes per second of the gateway process's CPU time\n")
    print_profile(profiler, args.min_share, args.html)


if __name__ == "__main__":
    main()
