"""Fixtures of the console's browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from tests.processes import GatewayProcess


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One development gateway for a test file; each test uses tenants of its own."""
    process = GatewayProcess(tmp_path_factory.mktemp("console"))
    try:
        yield process
    finally:
        process.stop()


# A shared CI machine can take longer than Playwright's default 5 s to answer a save and
# re-render: waits (never timed assertions) get more room.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def loopback_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A development gateway that may call the tests' loopback servers (the EHR, its token URL
    and key server) over plain HTTP, as in local testing."""
    process = GatewayProcess(
        tmp_path_factory.mktemp("console"),
        EHRGW_OUTBOUND_ALLOW_PRIVATE="true",
        EHRGW_ALLOW_INSECURE_HTTP="true",
    )
    try:
        yield process
    finally:
        process.stop()
