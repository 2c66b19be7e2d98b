"""The ehr-gateway command, run as an operator would: real processes, real ports."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr_gateway.storage.embedded import PID_FILE, free_port
from tests.processes import GatewayProcess, environment

SCHEMA_FILE = Path(__file__).parents[2] / "schema.graphql"
SELECT_EPIC = 'mutation { selectEhrProvider(tenantId: "acme", provider: EPIC) { __typename } }'
READ_PROVIDER = '{ integrationSettings(tenantId: "acme") { version provider } }'


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ehr_gateway.server.cli", *args]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_serve_runs_on_the_embedded_database_and_keeps_data_across_restarts(
    data_dir: Path,
) -> None:
    first = GatewayProcess(data_dir)
    try:
        assert first.graphql(SELECT_EPIC) == {
            "data": {"selectEhrProvider": {"__typename": "SettingsSaved"}}
        }
        assert (data_dir / PID_FILE).exists()
    finally:
        first.stop()
    assert not (data_dir / PID_FILE).exists(), "the embedded database was not stopped"
    assert oct((data_dir / "encryption.key").stat().st_mode & 0o777) == "0o600"

    second = GatewayProcess(data_dir)
    try:
        assert second.graphql(READ_PROVIDER) == {
            "data": {"integrationSettings": {"version": 1, "provider": "EPIC"}}
        }
    finally:
        second.stop()


def _run(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(*args), env=environment(**variables), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_taken_port_is_one_clear_line(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("serve", "--port", str(port), EHRGW_DATA_DIR=str(data_dir))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ehr-gateway: port {port} on 127.0.0.1 is already in use; set --port or EHRGW_PORT"
    ]


def test_an_unreachable_database_is_one_clear_line(data_dir: Path) -> None:
    nowhere = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    result = _run(
        "serve", "--port", str(free_port()),
        EHRGW_MONGODB_URL=nowhere, EHRGW_DB_TIMEOUT_MS="300", EHRGW_DATA_DIR=str(data_dir),
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ehr-gateway: cannot reach the database at EHRGW_MONGODB_URL")
    assert not data_dir.exists(), "nothing is launched when a database URL is configured"


def test_invalid_configuration_is_one_clear_line() -> None:
    result = _run("serve", EHRGW_PORT="eighty")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ehr-gateway: invalid configuration: EHRGW_PORT:")


def test_an_issuer_that_would_widen_the_consoles_policy_is_one_clear_line() -> None:
    result = _run("serve", EHRGW_AUTH_ISSUER="https://issuer.example.test;script-src-elem *")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ehr-gateway: invalid configuration: EHRGW_AUTH_ISSUER:"), line


def test_export_schema_prints_the_committed_schema() -> None:
    result = _run("export-schema")
    assert result.returncode == 0
    assert result.stdout == SCHEMA_FILE.read_text()


def test_serve_help_shows_the_defaults() -> None:
    result = _run("serve", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "(EHRGW_HOST; default: 127.0.0.1)" in text
    assert "(EHRGW_PORT; default: 8000)" in text
    assert "(EHRGW_WORKERS; default: 1)" in text
