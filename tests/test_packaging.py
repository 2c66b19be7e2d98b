"""The distribution: one namespace, so a wheel built from the repository installs beside the
`gql` GraphQL client from PyPI (a name our GraphQL layer once had at the top level) and serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.processes import GatewayProcess

REPOSITORY = Path(__file__).resolve().parent.parent

READINESS_QUERY = "query ($tenantId: ID!) { readiness(tenantId: $tenantId) { ready } }"


def build_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(into), str(REPOSITORY)],
        check=True, capture_output=True, cwd=into,
    )  # fmt: skip
    (wheel,) = into.glob("ehr_gateway-*.whl")
    return wheel


def install(wheel: Path, target: Path) -> None:
    """The wheel alone into ``target`` (its dependencies are this environment's)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip


def test_the_wheel_holds_one_top_level_package_with_graphiql_and_the_console(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    target = tmp_path / "site"
    install(wheel, target)

    top_level = {path.name for path in target.iterdir() if not path.name.endswith(".dist-info")}
    assert top_level - {"bin"} == {"ehr_gateway"}
    assert (target / "ehr_gateway" / "gql" / "static" / "graphiql" / "SHA256SUMS").is_file()
    assert (target / "ehr_gateway" / "console" / "index.html").is_file()
    assert (target / "ehr_gateway" / "console" / "vendor" / "SHA256SUMS").is_file()


def test_the_installed_wheel_serves_beside_the_gql_client(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install(build_wheel(tmp_path), target)
    outside = tmp_path / "elsewhere"  # not the repository: its folders must not be importable
    outside.mkdir()

    probe = subprocess.run(
        [sys.executable, "-c",
         "import gql, ehr_gateway.gql.schema as schema; "
         "print(gql.Client.__module__); print(schema.__file__)"],
        check=True, capture_output=True, text=True, cwd=outside,
        env={"PYTHONPATH": str(target), "PATH": ""},
    )  # fmt: skip
    client_module, schema_file = probe.stdout.split()
    assert client_module.startswith("gql.")  # PyPI's client, not our schema
    assert Path(schema_file).is_relative_to(target)

    # Started as the probe ran: same interpreter, environment and folder, so the same modules.
    gateway = GatewayProcess(tmp_path / "data", cwd=outside, PYTHONPATH=str(target))
    try:
        answer = gateway.graphql(READINESS_QUERY, tenantId="acme")
        assert answer["data"]["readiness"] == {"ready": False}
        page = httpx.get(f"{gateway.url}/graphql", headers={"accept": "text/html"}, timeout=5)
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        console = httpx.get(f"{gateway.url}/console/", timeout=5)
        assert console.status_code == 200 and "importmap" in console.text
    finally:
        gateway.stop()
