"""Real HTTP servers on loopback for the gateway's outbound calls, served by uvicorn in the test's
event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from ehr_gateway.storage.embedded import free_port


@asynccontextmanager
async def serve_on_loopback(
    app: ASGIApp, http: type[asyncio.Protocol] | str = "auto"
) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port (with uvicorn's HTTP protocol ``http``, its own by
    default); yields its base URL (http://127.0.0.1:PORT)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", http=http
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
