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

from tests.processes import GatewayProcess

READ = "query Read($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }"
SHUTDOWN_TIMEOUT_S = 2
# Far past the timeout: a process still running then is held by its log, not slow.
EXIT_BOUND_S = 30
WATCHDOG_MESSAGE = "the shutdown did not finish within"
# Far more access lines than a pipe and the reader's one read hold together.
MOST_ANSWERED_UNREAD = 2000


class StarvedGateway(GatewayProcess):
    """A gateway whose standard output is not read while ``reading`` is clear. The reader may
    be inside one read already when it is cleared."""

    def __init__(self, data_dir: Path, stderr: int = subprocess.STDOUT, **settings: str) -> None:
        self.reading = threading.Event()
        self.reading.set()
        super().__init__(data_dir, stderr=stderr, **settings)

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while self.reading.wait() and (chunk := stream.read1(1 << 16)):
            with self._lock:
                self._printed += chunk


def starve(gateway: StarvedGateway) -> list[str]:
    """Stops reading the gateway's output and sends reads until one is not answered (the loop
    waits in the log's write); the request ids of those answered, in order."""
    gateway.reading.clear()
    answered: list[str] = []
    headers = {"authorization": f"Bearer {gateway.token}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=5) as client:
        try:
            while len(answered) < MOST_ANSWERED_UNREAD:
                request_id = f"starved-{len(answered)}"
                client.post(
                    "/graphql",
                    json={"query": READ, "variables": {"tenantId": "acme"}},
                    headers={"x-request-id": request_id},
                ).raise_for_status()
                answered.append(request_id)
        except httpx.TimeoutException:
            pass
    assert len(answered) < MOST_ANSWERED_UNREAD, "requests never waited for the log"
    return answered


def fill_up(gateway: StarvedGateway) -> None:
    """Fills the gateway's unread standard output to the last byte, through a writing end of
    the same pipe: the loop's stuck write leaves room for a line shorter than itself, and a log
    that stays unread long enough has none."""
    descriptor = os.open(f"/proc/{gateway.process.pid}/fd/1", os.O_WRONLY | os.O_NONBLOCK)
    try:
        size = 4096
        while size:
            try:
                os.write(descriptor, b"\n" * size)
            except BlockingIOError:
                size //= 2
    finally:
        os.close(descriptor)


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
        answered = starve(gateway)
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
    # Every answered request's line, in order: the ones the stuck write held too.
    logged = [rid for rid in logged_request_ids(printed) if rid.startswith("starved-")]
    assert logged[: len(answered)] == answered


def test_a_log_nobody_reads_does_not_hold_the_process_past_its_timeout(
    database_url: str, tmp_path: Path
) -> None:
    # Standard error shares the unread pipe: the watchdog's own word cannot get out either.
    gateway = StarvedGateway(tmp_path, **settings(database_url))
    try:
        starve(gateway)
        fill_up(gateway)
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXIT_BOUND_S} s after SIGTERM, held by its log")
    finally:
        gateway.reading.set()
        printed = gateway.stop()

    assert gateway.exited_by_itself and gateway.process.returncode == 0, printed[-2000:]
