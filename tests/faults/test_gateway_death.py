"""A gateway killed with ``kill -9`` does not leave its embedded database behind to block the next
start on its data dir: the database ends by itself, and one that could not (frozen when its
gateway died) is stopped by the next ``serve``, which can prove it stale. A database it cannot
prove stale (a gateway still running, an unrelated process named by the pid file) is left alone,
and ``serve`` refuses in one line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr_gateway.storage.embedded import OWNER_FILE, PID_FILE, process_info
from tests.gql.test_change_feed_recovery import STORE_KEY
from tests.gql.test_configuration_changed import new_tenant
from tests.ledger import check_ledger
from tests.processes import GatewayProcess, embedded_pid, embedded_port, ended, environment

DATABASE = "gateway_death"
ENDS_WITHIN_S = 15  # generous: the parent-death signal is immediate


def wait_until_ended(pid: int, within: float = ENDS_WITHIN_S) -> None:
    deadline = time.monotonic() + within
    while not ended(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs after {within}s"
        time.sleep(0.05)


def store(gateway: GatewayProcess, tenant_id: str, version: int) -> str:
    value = f"value-{version}"
    result = gateway.graphql(STORE_KEY, tenantId=tenant_id, key=value, expectedVersion=version - 1)
    assert result["data"]["updateEhrSettings"]["settings"]["version"] == version, result
    return value


def serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``ehr-gateway serve`` on ``data_dir``, expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", "serve", "--port", "0"],
        env=environment(EHRGW_DATA_DIR=str(data_dir), EHRGW_DATABASE=DATABASE),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


class Leftovers:
    """Processes a test may leave behind if it fails, killed at the end: each the very process
    the test named (its start time says so), never another that took its pid since."""

    def __init__(self) -> None:
        self.processes: dict[int, str] = {}

    def append(self, pid: int) -> None:
        info = process_info(pid)
        if info is not None:
            self.processes[pid] = info.started

    def kill(self) -> None:
        for pid, started in self.processes.items():
            info = process_info(pid)
            if info is not None and info.started == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    processes = Leftovers()
    yield processes
    processes.kill()


def test_the_database_of_a_killed_gateway_ends_by_itself(
    data_dir: Path, leftovers: Leftovers
) -> None:
    gateway = GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE)
    tenant_id = new_tenant(gateway)
    acknowledged = {2: store(gateway, tenant_id, 2)}
    server = embedded_pid(data_dir)
    assert server is not None
    leftovers.append(server)

    gateway.kill()
    wait_until_ended(server)

    # Nothing blocks the next start on the data dir, and the data is there.
    successor = GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE)
    try:
        acknowledged[3] = store(successor, tenant_id, 3)
        url = f"mongodb://127.0.0.1:{embedded_port(embedded_pid(data_dir) or 0)}/"
        check_ledger(url, DATABASE, tenant_id, {1: None, **acknowledged})
    finally:
        output = successor.stop()
    assert "in use by another embedded database" not in output


def test_a_stale_database_of_a_dead_gateway_is_stopped_by_the_next_serve(
    data_dir: Path, leftovers: Leftovers
) -> None:
    gateway = GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE)
    tenant_id = new_tenant(gateway)
    acknowledged = {2: store(gateway, tenant_id, 2)}
    server = embedded_pid(data_dir)
    assert server is not None
    leftovers.append(server)
    # Frozen while its gateway dies, the database can act on neither the parent-death signal
    # nor its parent watcher: it outlives the gateway, with its pid file and port.
    os.kill(server, signal.SIGSTOP)
    gateway.kill()
    time.sleep(1)
    stale = process_info(server)
    assert stale is not None and stale.state == "T", stale

    successor = GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE)
    try:
        assert ended(server)
        assert embedded_pid(data_dir) != server
        acknowledged[3] = store(successor, tenant_id, 3)
        url = f"mongodb://127.0.0.1:{embedded_port(embedded_pid(data_dir) or 0)}/"
        check_ledger(url, DATABASE, tenant_id, {1: None, **acknowledged})
    finally:
        output = successor.stop()
    assert f"stopping the embedded database (pid {server})" in output, output
    assert "Traceback" not in output, output


def test_serve_refuses_a_data_dir_whose_gateway_still_runs(data_dir: Path) -> None:
    gateway = GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE)
    try:
        server = embedded_pid(data_dir)
        refused = serve(data_dir)
        assert gateway.health()["status"] == "ok"
        assert process_info(server or 0) is not None and not ended(server or 0)
    finally:
        gateway.stop()
    assert refused.returncode == 2
    assert refused.stderr == (
        f"ehr-gateway: the data dir {data_dir} is in use by another embedded database "
        f"(pid {server}); stop it or choose another EHRGW_DATA_DIR\n"
    )


def test_serve_leaves_alone_an_unrelated_process_named_by_the_pid_file(
    data_dir: Path, leftovers: Leftovers
) -> None:
    GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE).stop()
    unrelated = subprocess.Popen(["sleep", "300"])
    leftovers.append(unrelated.pid)
    # Everything says stale but the process itself: the pid file and the record of a gateway
    # that is gone name it. It is not our database; it may matter to someone.
    (data_dir / PID_FILE).write_text(str(unrelated.pid))
    gone = subprocess.Popen(["true"])
    gone.wait()
    (data_dir / OWNER_FILE).write_text(
        json.dumps({"gatewayPid": gone.pid, "gatewayStarted": "0", "serverPid": unrelated.pid})
    )

    refused = serve(data_dir)

    assert refused.returncode == 2
    assert refused.stderr == (
        f"ehr-gateway: the data dir {data_dir} is in use by another embedded database "
        f"(pid {unrelated.pid}); stop it or choose another EHRGW_DATA_DIR\n"
    )
    assert unrelated.poll() is None  # still running
    unrelated.kill()
    unrelated.wait()


def test_serve_leaves_alone_a_process_that_only_names_the_launcher_in_its_arguments(
    data_dir: Path, leftovers: Leftovers
) -> None:
    """A record that says stale in every detail, the process's own start time included, and a
    process whose command line holds the launcher's name and this data dir as mere arguments:
    it is not our launcher (nor started by the gateway the record names), and is not stopped."""
    GatewayProcess(data_dir, EHRGW_DATABASE=DATABASE).stop()
    gone = subprocess.Popen(["true"])
    gone.wait()
    database_dir = str(data_dir.absolute() / "db")
    decoy = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)",
         "-m", "ehr_gateway.storage.embedded_child", "--gateway-pid", str(gone.pid),
         "--data-dir", database_dir],
    )  # fmt: skip
    leftovers.append(decoy.pid)
    info = process_info(decoy.pid)
    assert info is not None
    (data_dir / PID_FILE).write_text(str(decoy.pid))
    (data_dir / OWNER_FILE).write_text(
        json.dumps(
            {
                "gatewayPid": gone.pid,
                "gatewayStarted": "0",
                "serverPid": decoy.pid,
                "serverStarted": info.started,
            }
        )
    )

    refused = serve(data_dir)

    assert refused.returncode == 2, refused.stderr
    assert "is in use by another embedded database" in refused.stderr
    assert decoy.poll() is None  # still running
    decoy.kill()
    decoy.wait()
