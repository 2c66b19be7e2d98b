"""A loopback proxy between gateways and their database, for fault tests: it forwards each
connection's wire-protocol traffic both ways, and a test's subclass decides, chunk by chunk,
what becomes of a request (forwarded, held back, or the connection cut before it) and whether
the database's replies still reach the gateway.

The proxy runs on the test's event loop: start the gateways behind it off that loop
(``asyncio.to_thread``), or nothing answers them while they start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TypeVar

from tests.processes import GatewayProcess

CHUNK = 1 << 16


class Connection:
    """One gateway connection through the proxy."""

    def __init__(self) -> None:
        self.replies_dropped = False  # the gateway hears nothing more on it


class DatabaseProxy:
    """Forwards everything; subclasses override ``forward``."""

    def __init__(self, database_port: int) -> None:
        self.database_port = database_port
        self.port = 0

    @property
    def url(self) -> str:
        """The MongoDB URL a gateway behind the proxy is given."""
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def forward(self, chunk: bytes, connection: Connection) -> bool:
        """Called with each request chunk before it goes to the database (it may wait, to hold
        the connection back); False cuts the connection instead."""
        return True

    async def serve(
        self, gateway_in: asyncio.StreamReader, gateway_out: asyncio.StreamWriter
    ) -> None:
        db_in, db_out = await asyncio.open_connection("127.0.0.1", self.database_port)
        connection = Connection()

        async def requests() -> None:
            while chunk := await gateway_in.read(CHUNK):
                if not await self.forward(chunk, connection):
                    return
                db_out.write(chunk)
                await db_out.drain()

        async def replies() -> None:
            with suppress(ConnectionError):
                while chunk := await db_in.read(CHUNK):
                    if not connection.replies_dropped:
                        gateway_out.write(chunk)
                        await gateway_out.drain()

        replying = asyncio.create_task(replies())
        try:
            await requests()
        except ConnectionError:
            pass
        finally:
            replying.cancel()
            db_out.close()
            gateway_out.close()


# The replace of a tenant's settings document: an update command on tenant_settings.
REPLACE = b"\x02update\x00\x10\x00\x00\x00tenant_settings\x00"


class HeldReplaces(DatabaseProxy):
    """While a tenant is named, holds each replace of its settings document for ``hold_s``
    seconds, then delivers it: late, not lost, as a congested link or TCP retransmits would.
    The gateway gives up waiting at its deadline; the database applies it when it arrives."""

    def __init__(self, database_port: int, hold_s: float) -> None:
        super().__init__(database_port)
        self.hold_s = hold_s
        self.tenant: bytes | None = None
        self.held = asyncio.Event()  # at least one replace was held

    async def forward(self, chunk: bytes, connection: Connection) -> bool:
        if self.tenant is not None and REPLACE in chunk and self.tenant in chunk:
            self.held.set()
            try:
                await asyncio.sleep(self.hold_s)
            except asyncio.CancelledError:
                return False  # the test is over and its proxy closing: nothing to deliver to
        return True


Proxy = TypeVar("Proxy", bound=DatabaseProxy)


@asynccontextmanager
async def listening(proxy: Proxy) -> AsyncIterator[Proxy]:
    """The proxy listening on a free loopback port for the duration."""
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    async with server:
        yield proxy


@asynccontextmanager
async def two_replicas_behind(
    proxy: DatabaseProxy, directory: Path, **env: str
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes whose database is behind ``proxy``, each with ``env``. Started off
    the event loop, which serves the proxy; stopped on the way out."""

    def replica(name: str) -> GatewayProcess:
        return GatewayProcess(directory / name, EHRGW_MONGODB_URL=proxy.url, **env)

    first = await asyncio.to_thread(replica, "first")
    try:
        second = await asyncio.to_thread(replica, "second")
        try:
            yield first, second
        finally:
            await asyncio.to_thread(second.stop, 5)
    finally:
        await asyncio.to_thread(first.stop, 5)
