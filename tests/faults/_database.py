"""What the fault tests of this folder share: a database server of the test's own, stalled
(SIGSTOP) and let go again (SIGCONT) as a hung host or a paused VM would be."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from ehr_gateway.storage.embedded import PID_FILE, EmbeddedMongo


@contextmanager
def stalled(database: EmbeddedMongo) -> Iterator[None]:
    """The database's process stopped (it keeps its connections, and answers nothing) for as
    long as the block runs; continued afterwards, whatever happened."""
    pid = int((database.data_dir / PID_FILE).read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
