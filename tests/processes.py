"""Real gateway processes on loopback ports, and WebSocket clients for both subscription
protocols, as runtime services would use them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.storage.embedded import PID_FILE, free_port, process_info

ALL_ROLES = ("viewer", "editor", "integrator", "service")


def staff_token(data_dir: Path) -> str:
    """A development token of the gateway using ``data_dir``: every role on every tenant."""
    return dev_tokens.mint(data_dir, tenants=["*"], roles=ALL_ROLES, subject="test-staff")


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any EHRGW_ setting, plus ``values``."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("EHRGW_")}
    clean.update(values)
    return clean


def embedded_pid(data_dir: Path) -> int | None:
    """The pid of the embedded database in ``data_dir``, from its pid file; None without one."""
    try:
        return int((data_dir / PID_FILE).read_text().strip() or 0) or None
    except FileNotFoundError:
        return None


def embedded_port(pid: int) -> int:
    """The port embedded database ``pid`` was started on (from its command line)."""
    info = process_info(pid)
    assert info is not None, f"no process {pid}"
    return int(info.command[info.command.index("--port") + 1])


def ended(pid: int) -> bool:
    """Process ``pid`` has ended. A zombie has ended too; whether it was reaped is asked apart."""
    info = process_info(pid)
    return info is None or info.state == "Z"


class GatewayProcess:
    """``ehr-gateway serve`` in a child process.

    What it prints is read continuously by a thread: a pipe nobody reads fills up, and a process
    that blocks writing a log line stops serving (a long test's access log is enough)."""

    def __init__(
        self,
        data_dir: Path,
        *arguments: str,
        cwd: Path | None = None,
        stderr: int = subprocess.STDOUT,
        **settings: str,
    ) -> None:
        """``cwd``: where it runs (this one's by default); ``stderr``: where its standard error
        goes (``subprocess.PIPE``: a pipe of its own, for the test to read; by default it is
        read with standard output); ``settings``: its environment."""
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.token = staff_token(data_dir)
        self.settings = settings
        self.exited_by_itself: bool | None = None  # once stopped
        self._printed = bytearray()
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ehr_gateway.server.cli",
                "serve",
                "--port",
                str(self.port),
                *arguments,
            ],
            env=environment(EHRGW_DATA_DIR=str(data_dir), **settings),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60  # a machine busy with other work starts it slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(self.printed())
            try:
                if self.health()["changeFeed"] == "running":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        output = self.stop()
        raise AssertionError(f"the gateway did not start:\n{output}")

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while chunk := stream.read1(1 << 16):
            with self._lock:
                self._printed += chunk

    def printed(self) -> str:
        """Everything the process has printed so far."""
        with self._lock:
            return self._printed.decode(errors="replace")

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/healthz", timeout=2)
        response.raise_for_status()
        health: dict[str, Any] = response.json()
        return health

    def wait_for_feed_subscribers(self, count: int, within: float = 10) -> None:
        """Wait until the change feed serves ``count`` streams: a live subscription only sees
        versions stored after it is registered, which happens shortly after `subscribe`."""
        deadline = time.monotonic() + within
        while self.health()["feedSubscribers"] != count:
            assert time.monotonic() < deadline, f"feed subscribers never reached {count}"
            time.sleep(0.05)

    def graphql(self, document: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": document, "variables": variables},
            headers={"authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    async def call(self, document: str, **variables: Any) -> dict[str, Any]:
        """``graphql``'s data, from a test's event loop: the call waits in a thread, as the
        gateway may call back into servers this loop serves."""
        body = await asyncio.to_thread(self.graphql, document, **variables)
        data: dict[str, Any] = body["data"]
        return data

    def stop(self, within: float = 20) -> str:
        """SIGTERM, as an orchestrator stops a replica; everything it printed. If it has not
        exited within ``within`` seconds it is killed (``exited_by_itself`` says which)."""
        if self.exited_by_itself is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=within)
                self.exited_by_itself = True
            except subprocess.TimeoutExpired:
                self.process.kill()  # leave no orphan behind
                self.process.wait()
                self.exited_by_itself = False
            self._reader.join(10)
        return self.printed()

    def kill(self) -> str:
        """SIGKILL, as a crashed machine ends a replica: no shutdown at all."""
        if self.exited_by_itself is None:
            self.process.kill()
            self.process.wait()
            self.exited_by_itself = False
            self._reader.join(10)
        return self.printed()


@contextmanager
def started_gateway(data_dir: Path, database_url: str, **settings: str) -> Iterator[GatewayProcess]:
    """A gateway process on a database of its own, named after ``data_dir``, on the server at
    ``database_url``; stopped at the end."""
    database = f"{data_dir.name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    process = GatewayProcess(
        data_dir, EHRGW_MONGODB_URL=database_url, EHRGW_DATABASE=database, **settings
    )
    try:
        yield process
    finally:
        process.stop()


class TransportWsClient:
    """A graphql-transport-ws client (the current protocol)."""

    protocol = "graphql-transport-ws"

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def connect(
        cls, url: str, *, token: str | None = None, init: bool = True
    ) -> TransportWsClient:
        """Connect; with ``init``, authenticate with ``token`` in connection_init."""
        connection = await websockets.connect(url, subprotocols=[cls.protocol])  # type: ignore[list-item]
        client = cls(connection)
        if init:
            payload = {"Authorization": f"Bearer {token}"} if token else {}
            await client.send({"type": "connection_init", "payload": payload})
            assert await client.receive() == {"type": "connection_ack"}
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, within: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.connection.recv(), within))
        return message

    async def subscribe(self, operation_id: str, document: str, **variables: Any) -> None:
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": document, "variables": variables},
            }
        )

    async def next_data(self, operation_id: str, within: float = 10) -> dict[str, Any]:
        """The data of the next result of ``operation_id`` (fails on anything else)."""
        message = await self.receive(within)
        assert message["type"] == "next" and message["id"] == operation_id, message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def close_code(self, within: float = 10) -> int | None:
        """Wait for the server to close the connection; its close code."""
        try:
            while True:
                await asyncio.wait_for(self.connection.recv(), within)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    async def close(self) -> None:
        await self.connection.close()


class LegacyWsClient(TransportWsClient):
    """A graphql-ws client (the legacy subscriptions-transport-ws protocol)."""

    protocol = "graphql-ws"

    async def subscribe(self, operation_id: str, document: str, **variables: Any) -> None:
        await self.send(
            {
                "id": operation_id,
                "type": "start",
                "payload": {"query": document, "variables": variables},
            }
        )

    async def receive(self, within: float = 10) -> dict[str, Any]:
        while True:
            message = await super().receive(within)
            if message["type"] != "ka":  # keep-alive
                return message

    async def next_data(self, operation_id: str, within: float = 10) -> dict[str, Any]:
        message = await self.receive(within)
        assert message["type"] == "data" and message["id"] == operation_id, message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data
