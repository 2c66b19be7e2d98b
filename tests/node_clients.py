"""The Node.js clients and tools frontend teams use (tests/js, installed by scripts/test), run
against real gateways: each script prints one JSON document, its findings, as its last line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).parent / "js"


def run_node(script: str, *arguments: str, env: dict[str, str], within: float = 120) -> Any:
    """Run ``tests/js/<script>`` with ``env`` added to this process's environment; what it
    printed last, decoded. A script that fails fails the test, with what it printed."""
    installed = (SCRIPTS / "node_modules").is_dir()
    assert installed, "the Node packages are not installed: run scripts/test"
    completed = subprocess.run(
        ["node", str(SCRIPTS / script), *arguments],
        cwd=SCRIPTS,
        env={**_without_gateway_settings(), **env},
        capture_output=True,
        text=True,
        timeout=within,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{script} exited with {completed.returncode}\n{completed.stdout}\n{completed.stderr}"
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing\n{completed.stderr}"
    return json.loads(lines[-1])


def _without_gateway_settings() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("EHRGW_")}
