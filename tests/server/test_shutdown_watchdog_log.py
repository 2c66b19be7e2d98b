"""A stop that runs past EHRGW_SHUTDOWN_TIMEOUT_S ends the process anyway (the shutdown
watchdog), and the log's last lines go out with it: a log that drains in time loses none of
them, and a log nobody reads does not hold the process past its timeout.

Standard output that does not drain (a log shipper that stopped) is what holds a stop here: the
event loop waits in the log's write, so neither the requests nor the shutdown go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from tests.documents import READ_VERSION
from tests.processes import GatewayProcess

SHUTDOWN_TIMEOUT_S = 2
# Far past the timeout: a process still running then is held by its log, not slow.
EXIT_BOUND_S = 30
WATCHDOG_MESSAGE = "the shutdown did not finish within"


class StarvedGateway(GatewayProcess):
    """A gateway whose standard output is not read while ``reading`` is clear. The reader may
    be inside one read already when it is cleared; ``parked`` is set once it has stopped."""

    def __init__(self, data_dir: Path, stderr: int = subprocess.STDOUT, **settings: str) -> None:
        self.reading = threading.Event()
        self.reading.set()
        self.parked = threading.Event()
        super().__init__(data_dir, stderr=stderr, **settings)

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            if not self.reading.is_set():
                self.parked.set()
                self.reading.wait()
                self.parked.clear()
            chunk = stream.read1(1 << 16)
            if not chunk:
                return
            with self._lock:
                self._printed += chunk


def write_to_its_output(gateway: StarvedGateway, data: bytes) -> int:
    """Writes what fits of ``data`` to the gateway's standard output, through a writing end of
    the same pipe; how much did."""
    descriptor = os.open(f"/proc/{gateway.process.pid}/fd/1", os.O_WRONLY | os.O_NONBLOCK)
    try:
        return os.write(descriptor, data)
    except BlockingIOError:
        return 0
    finally:
        os.close(descriptor)


def stuck(gateway: StarvedGateway) -> str:
    """A gateway whose event loop waits in the log's write, as behind a log shipper that
    stopped reading: its standard output unread and full to the last byte, then one request
    answered, whose access line is the write that waits. That request's id."""
    gateway.reading.clear()
    # Ends the read the reader may be waiting in; it stops after that one.
    assert write_to_its_output(gateway, b"\n")
    assert gateway.parked.wait(10), "the reader did not stop"
    size = 4096
    while size:
        if not write_to_its_output(gateway, b"\n" * size):
            size //= 2
    request_id = f"last-answered-{uuid.uuid4().hex[:8]}"
    httpx.post(
        f"{gateway.url}/graphql",
        json={"query": READ_VERSION, "variables": {"tenantId": "acme"}},
        headers={"authorization": f"Bearer {gateway.token}", "x-request-id": request_id},
        timeout=10,
    ).raise_for_status()
    return request_id


def settings(database_url: str) -> dict[str, str]:
    return {
        "EHRGW_MONGODB_URL": database_url,
        "EHRGW_DATABASE": f"watchdog_{uuid.uuid4().hex[:8]}",
        "EHRGW_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
    }


def logged_request_ids(printed: str) -> list[str]:
    return [
        entry["requestId"]
        for entry in (json.loads(line) for line in printed.splitlines() if line.startswith("{"))
        if entry["logger"] == "ehr_gateway.access"
    ]


def test_a_log_that_drains_after_the_timeout_still_gets_the_last_lines(
    database_url: str, tmp_path: Path
) -> None:
    gateway = StarvedGateway(tmp_path, stderr=subprocess.PIPE, **settings(database_url))
    said: list[str] = []

    def read_stderr() -> None:
        # The watchdog's word is what the log shipper waits for to start reading again: the
        # stop is past its timeout, and the process is on its way out.
        assert gateway.process.stderr is not None
        for line in gateway.process.stderr:
            said.append(line.decode(errors="replace"))
            if WATCHDOG_MESSAGE in said[-1]:
                gateway.reading.set()

    errors = threading.Thread(target=read_stderr, daemon=True)
    errors.start()
    try:
        last_answered = stuck(gateway)
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_BOUND_S} s after SIGTERM")
    finally:
        gateway.reading.set()
        printed = gateway.stop()
        errors.join(10)

    assert gateway.exited_by_itself and gateway.process.returncode == 0, printed[-2000:]
    assert any(WATCHDOG_MESSAGE in line for line in said), said
    # The line the stuck write held went out once the log drained.
    assert last_answered in logged_request_ids(printed), printed[-2000:]


def test_a_log_nobody_reads_does_not_hold_the_process_past_its_timeout(
    database_url: str, tmp_path: Path
) -> None:
    # Standard error shares the unread pipe: the watchdog's own word cannot get out either.
    gateway = StarvedGateway(tmp_path, **settings(database_url))
    try:
        stuck(gateway)
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_BOUND_S} s after SIGTERM, held by its log")
    finally:
        gateway.reading.set()
        printed = gateway.stop()

    assert gateway.exited_by_itself and gateway.process.returncode == 0, printed[-2000:]
