"""A data dir the gateway may not use is a one-line startup error naming it (exit status 2), for
every command that touches it, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.storage.embedded import free_port
from ehr_gateway.storage.secrets import SecretBox
from tests.processes import environment


def run(command: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", *command],
        # A port nothing listens on: `token --init` refuses to make a key while one is taken.
        env=environment(EHRGW_DATA_DIR=str(data_dir), EHRGW_PORT=str(free_port())),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def assert_one_line_about(result: subprocess.CompletedProcess[str], data_dir: Path) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"ehr-gateway: cannot use the data dir {data_dir}: ")
    return result.stderr


SERVE = ["serve", "--port", "0"]
# --init: a token is minted without one only with the key a gateway made in the data dir.
TOKEN = ["token", "--init", "--tenant", "t-1", "--role", "viewer"]


@pytest.mark.parametrize("command", [SERVE, TOKEN], ids=["serve", "token"])
def test_a_file_where_the_data_dir_should_be(tmp_path: Path, command: list[str]) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("not a directory")
    message = assert_one_line_about(run(command, data_dir), data_dir)
    assert message.endswith(": File exists\n")


@pytest.mark.parametrize("command", [SERVE, TOKEN], ids=["serve", "token"])
def test_a_data_dir_under_a_file(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "file").write_text("not a directory")
    data_dir = tmp_path / "file" / "data"
    message = assert_one_line_about(run(command, data_dir), data_dir)
    assert message.endswith(": Not a directory\n")


@pytest.fixture
def locked_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir with its keys, which the gateway may read but not change. Root may change any
    file whatever its mode, but not one marked immutable (``chattr +i``); anyone else may not
    change a directory owned by another user, here simulated by the mode of its parent."""
    data_dir = tmp_path / "locked" / "data"
    SecretBox.from_data_dir(data_dir)
    dev_tokens.signing_key(data_dir)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(data_dir)], check=True)
        yield data_dir
        subprocess.run(["chattr", "-i", str(data_dir)], check=True)
    else:
        data_dir.parent.chmod(0o000)
        yield data_dir
        data_dir.parent.chmod(0o700)


@pytest.mark.parametrize(
    "command", [SERVE, ["verify-audit"], ["rotate-secrets"]], ids=lambda c: c[0]
)
def test_a_data_dir_the_gateway_may_not_change(locked_data_dir: Path, command: list[str]) -> None:
    result = run(command, locked_data_dir)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert str(locked_data_dir) in result.stderr
    if os.geteuid() == 0:
        assert_one_line_about(result, locked_data_dir)
