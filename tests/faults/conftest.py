"""What the fault tests share: a database server of the test's own, in a separate process on a
fixed port (so that it can come back there), which a test may stall, kill or restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr_gateway.storage.embedded import EmbeddedMongo, free_port


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(tmp_path / "database", port=free_port())
    server.start()
    yield server
    server.stop()
