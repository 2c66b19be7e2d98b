"""Where a settings read spends its time: the read benchmark's query, sent straight to the ASGI
app in-process (no network, no HTTP client) under pyinstrument, with the response cache on or
off.

    python bench/profile_reads.py                       # response cache on
    python bench/profile_reads.py --no-response-cache   # every request executed
    python bench/profile_reads.py --html profile.html   # the full call tree, for a browser
    python bench/profile_reads.py --no-response-cache --generic   # every field via graphql-core
    python bench/profile_reads.py --access-log          # with an access line per request
    python bench/profile_reads.py --rounds 20 --requests 1000   # the best of 20 timed rounds

Prints requests per second in-process (measured before profiling, which slows them), and per
second of this process's CPU time (steadier on a busy machine), the call tree down to frames
that take at least --min-share of the time, and self time by function.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging.config
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pyinstrument import Profiler
from starlette.types import Message

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import graphql_post_scope, print_profile  # noqa: E402
from bench.reads import SAVE_EPIC, TENANT, read_request, seed_variables  # noqa: E402
from ehr_gateway.runtime import dev_tokens  # noqa: E402
from ehr_gateway.server.app import create_app, freeze_startup_heap  # noqa: E402
from ehr_gateway.server.config import GatewayConfig  # noqa: E402
from ehr_gateway.server.logs import log_config  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402
from tests.documents import SELECT_PROVIDER  # noqa: E402


async def profile(
    database_url: str,
    data_dir: Path,
    requests: int,
    response_cache: bool,
    compiled: bool,
    access_log: bool = False,
    rounds: int = 1,
) -> tuple[float, float, Profiler]:
    config = GatewayConfig(
        mongodb_url=database_url,
        database="profile",
        data_dir=data_dir,
        response_cache=response_cache,
        access_log=access_log,
        compiled_reads=compiled,
    )
    app = create_app(config)
    freeze_startup_heap()  # as a served process does
    token = dev_tokens.mint(data_dir, tenants=[TENANT], roles=["integrator", "service"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"authorization": f"Bearer {token}"},
        ) as client:
            await client.post(
                "/graphql",
                json={
                    "query": SELECT_PROVIDER,
                    "variables": {"tenantId": TENANT, "provider": "EPIC"},
                },
            )
            await client.post("/graphql", json={"query": SAVE_EPIC, "variables": seed_variables()})
        body = json.dumps(read_request()).encode()
        scope = graphql_post_scope(body, token)
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        async def one_read() -> bytes:
            sent.clear()
            await app(dict(scope), receive, send)
            return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

        for _ in range(50):  # warm the caches
            answer = await one_read()
        assert b'"errors"' not in answer, answer
        # Rounds, each timed on its own: on a busy machine the best round is the one least
        # disturbed by the rest of it, and compares between runs where an average does not.
        rates: list[tuple[float, float]] = []
        for _ in range(rounds):
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(requests):
                await one_read()
            rates.append(
                (
                    requests / (time.perf_counter() - started),
                    requests / (time.process_time() - cpu_started),
                )
            )
        rate = max(wall for wall, _ in rates)
        cpu_rate = max(cpu for _, cpu in rates)
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        for _ in range(requests):
            await one_read()
        profiler.stop()
    return rate, cpu_rate, profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--no-response-cache", action="store_true")
    parser.add_argument(
        "--generic", action="store_true", help="every field through graphql-core (no plans)"
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="an access line per request, logged as `serve` configures logging, to /dev/null",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="time this many rounds of --requests; the best"
    )
    parser.add_argument("--min-share", type=float, default=0.03)
    parser.add_argument("--html", type=Path, help="also write the full profile as HTML")
    args = parser.parse_args()
    if args.access_log:
        # Open for as long as the process logs (to the end).
        devnull = open(os.devnull, "w")  # noqa: SIM115
        with contextlib.redirect_stdout(devnull):
            logging.config.dictConfig(log_config("json", "info"))
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as db:
        rate, cpu_rate, profiler = asyncio.run(
            profile(
                db.url,
                Path(tmp),
                args.requests,
                not args.no_response_cache,
                not args.generic,
                args.access_log,
                args.rounds,
            )
        )
    best = f" (the best of {args.rounds} rounds)" if args.rounds > 1 else ""
    print(f"{rate:.0f} requests/s in-process (without the profiler){best}")
    print(f"{cpu_rate:.0f} requests per second of the process's CPU time{best}\n")
    print_profile(profiler, args.min_share, args.html)


if __name__ == "__main__":
    main()
