"""Development mode (no EHRGW_AUTH_ISSUER): `ehr-gateway token` mints tokens with a key kept in
the data dir, a gateway on that data dir accepts them (and no other gateway does), and the
gateway refuses to listen anywhere but loopback. Real processes, as a developer runs them."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.runtime.dev_tokens import KEY_FILE
from ehr_gateway.storage.embedded import free_port
from tests.processes import GatewayProcess, environment

SELECT_EPIC = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) {
    __typename
    ... on SettingsSaved { settings { version provider } }
  }
}
"""
ISSUER = "https://issuer.example.test"


def _run(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", *args], env=environment(**variables),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _mint(data_dir: Path, *args: str) -> str:
    """Minted with --init: the data dir may have no key yet (and no gateway listens on the port
    given, which --init needs)."""
    result = _run(
        "token", "--init", *args, EHRGW_DATA_DIR=str(data_dir), EHRGW_PORT=str(free_port())
    )
    assert result.returncode == 0, result.stderr
    [token] = result.stdout.strip().splitlines()
    return token


def _post(gateway: GatewayProcess, token: str, document: str, **variables: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


def _segment(encoded: str) -> dict[str, Any]:
    """A JWT header or claims segment, decoded."""
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    return decoded


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ehr-gateway: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("development") / "data"


@pytest.fixture(scope="module")
def minted(data_dir: Path) -> tuple[str, str]:
    """A tenant and an integrator token for it, minted by the CLI before any gateway ran (so
    the CLI created the signing key, as --init asks)."""
    tenant = f"dev-{uuid.uuid4().hex[:8]}"
    return tenant, _mint(data_dir, "--tenant", tenant, "--role", "integrator")


@pytest.fixture(scope="module")
def gateway_process(
    database_url: str, data_dir: Path, minted: tuple[str, str]
) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        data_dir, EHRGW_MONGODB_URL=database_url, EHRGW_DATABASE=f"dev_{uuid.uuid4().hex[:8]}"
    )
    try:
        yield process
    finally:
        process.stop()


def test_token_prints_a_jwt_and_keeps_its_key_private(
    data_dir: Path, minted: tuple[str, str]
) -> None:
    tenant, token = minted
    header, claims = (_segment(part) for part in token.split(".")[:2])
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["tenants"] == [tenant]
    assert claims["roles"] == ["integrator"]
    assert claims["sub"] == "developer"
    assert claims["exp"] - claims["iat"] == 3600
    key_file = data_dir / KEY_FILE
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_a_minted_token_acts_on_its_tenant(
    gateway_process: GatewayProcess, minted: tuple[str, str]
) -> None:
    tenant, token = minted
    response = _post(gateway_process, token, SELECT_EPIC, tenantId=tenant)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": {
            "selectEhrProvider": {
                "__typename": "SettingsSaved",
                "settings": {"version": 1, "provider": "EPIC"},
            }
        }
    }


def test_a_minted_token_is_forbidden_on_another_tenant(
    gateway_process: GatewayProcess, minted: tuple[str, str]
) -> None:
    _, token = minted
    response = _post(gateway_process, token, SELECT_EPIC, tenantId=f"other-{uuid.uuid4().hex[:8]}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"]


def test_a_token_minted_for_another_data_dir_is_refused(
    gateway_process: GatewayProcess, minted: tuple[str, str], tmp_path: Path
) -> None:
    tenant, _ = minted
    foreign = _mint(tmp_path / "elsewhere", "--tenant", tenant, "--role", "integrator")
    response = _post(gateway_process, foreign, SELECT_EPIC, tenantId=tenant)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_serve_tells_how_to_get_a_token(gateway_process: GatewayProcess) -> None:
    # Last in the module that uses the process: stopping it ends its output.
    output = gateway_process.stop()
    assert "ehr-gateway token" in output, output


def test_an_unknown_role_is_one_clear_line(tmp_path: Path) -> None:
    result = _run("token", "--tenant", "t", "--role", "admin", EHRGW_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    line = _one_line(result)
    assert "'admin'" in line and "integrator" in line
    assert result.stdout == ""


@pytest.mark.parametrize("ttl", ["0", "86401"])
def test_a_ttl_out_of_range_is_refused(tmp_path: Path, ttl: str) -> None:
    result = _run(
        "token", "--tenant", "t", "--role", "viewer", "--ttl", ttl, EHRGW_DATA_DIR=str(tmp_path)
    )
    assert result.returncode == 2
    assert "--ttl" in _one_line(result)
    assert result.stdout == ""


def test_tokens_are_minted_only_in_development_mode(tmp_path: Path) -> None:
    result = _run(
        "token", "--tenant", "t", "--role", "viewer",
        EHRGW_DATA_DIR=str(tmp_path / "data"), EHRGW_AUTH_ISSUER=ISSUER,
    )  # fmt: skip
    assert result.returncode == 2
    assert "development mode" in _one_line(result)
    assert result.stdout == ""
    assert not (tmp_path / "data" / KEY_FILE).exists()


def test_development_mode_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = _run("serve", EHRGW_HOST="0.0.0.0", EHRGW_DATA_DIR=str(data_dir))
    assert result.returncode == 2
    assert "loopback" in _one_line(result)
    assert not data_dir.exists(), "nothing is started: no embedded database, no keys"
