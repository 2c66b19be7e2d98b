"""`ehr-gateway token` run as a developer runs it, from another directory than the gateway's:
it never signs with a key no gateway knows. It names the key file it used, makes a key only when
asked (--init) and never while a gateway that keeps its key elsewhere is listening, and its
--help shows the defaults."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ehr_gateway.runtime.dev_tokens import KEY_FILE
from ehr_gateway.storage.embedded import free_port
from tests.documents import READ_VERSION
from tests.processes import GatewayProcess, environment


def _token(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """The CLI in ``cwd``, the data dir left to its default (relative to ``cwd``) unless set."""
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", "token", *args],
        cwd=cwd, env=environment(**variables), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _read(gateway: GatewayProcess, token: str, tenant: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/graphql",
        json={"query": READ_VERSION, "variables": {"tenantId": tenant}},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A development gateway started in its own directory, with the default data dir there."""
    started_in = tmp_path_factory.mktemp("gateway")
    process = GatewayProcess(started_in / ".ehrgw-data")
    try:
        yield process
    finally:
        process.stop()


def test_from_another_directory_it_refuses_and_makes_no_key(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    # The gateway's port, as the developer's shell has it: a gateway listens there.
    result = _token(tmp_path, "--tenant", tenant, "--role", "viewer", EHRGW_PORT=str(gateway.port))
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert str(tmp_path / ".ehrgw-data" / KEY_FILE) in line
    assert f"a server listens on 127.0.0.1:{gateway.port}" in line
    assert "EHRGW_DATA_DIR" in line
    assert not (tmp_path / ".ehrgw-data").exists()


def test_init_is_refused_while_a_gateway_listens(gateway: GatewayProcess, tmp_path: Path) -> None:
    result = _token(
        tmp_path, "--tenant", "t", "--role", "viewer", "--init", EHRGW_PORT=str(gateway.port)
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "a server listens on" in result.stderr
    assert not (tmp_path / ".ehrgw-data").exists()


def test_with_the_gateways_data_dir_it_names_the_key_and_the_token_works(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    result = _token(
        tmp_path, "--tenant", tenant, "--role", "viewer",
        "--data-dir", str(gateway.data_dir), EHRGW_PORT=str(gateway.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [token] = result.stdout.strip().splitlines()
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"ehr-gateway: signed with {gateway.data_dir / KEY_FILE};"), line
    response = _read(gateway, token, tenant)
    assert response.status_code == 200, response.text
    assert not (tmp_path / ".ehrgw-data").exists()


def test_without_a_gateway_it_makes_a_key_only_with_init(tmp_path: Path) -> None:
    port = str(free_port())  # nothing listens there
    refused = _token(tmp_path, "--tenant", "t", "--role", "viewer", EHRGW_PORT=port)
    assert refused.returncode == 2
    assert "--init" in refused.stderr
    assert not (tmp_path / ".ehrgw-data").exists()

    made = _token(tmp_path, "--tenant", "t", "--role", "viewer", "--init", EHRGW_PORT=port)
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / ".ehrgw-data" / KEY_FILE
    assert made.stderr.startswith(f"ehr-gateway: made and signed with {key_file};")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    # A gateway started there afterwards accepts it.
    [token] = made.stdout.strip().splitlines()
    gateway = GatewayProcess(tmp_path / ".ehrgw-data")
    try:
        tenant_read = _read(gateway, token, "t")
        assert tenant_read.status_code == 200, tenant_read.text
    finally:
        gateway.stop()


def test_help_shows_the_defaults(tmp_path: Path) -> None:
    result = _token(tmp_path, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "(default: developer)" in text
    assert "(default: 3600)" in text
    assert "default: .ehrgw-data" in text
    assert "(default: None)" not in text
