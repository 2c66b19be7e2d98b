"""A small disk of its own for a database, to fill up and free again: a tmpfs mounted for the
test (the test runs as root, as CI does). A test that cannot mount one fails: it never skips."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

FILLER = "filler"


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self) -> None:
        """Take every byte left, so the next write the database makes fails for space."""
        descriptor = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 12, 1 << 9):  # big pieces, then what is left of them
                with suppress(OSError):  # ENOSPC: no room for another piece this size
                    while os.write(descriptor, b"\0" * size) == size:
                        pass
        finally:
            os.close(descriptor)
        assert self.free_bytes() < 4096, f"{self.free_bytes()} bytes still free"

    def free(self) -> None:
        """Give the space back."""
        (self.path / FILLER).unlink(missing_ok=True)


@contextmanager
def small_disk(path: Path, size: str = "16m") -> Iterator[SmallDisk]:
    """A tmpfs of ``size`` mounted at ``path`` for the duration."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, (
        f"could not mount a {size} tmpfs at {path} for the full-disk test (it needs root, as CI "
        f"has): {mounted.stderr.strip()}"
    )
    try:
        yield SmallDisk(path)
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # busy: detach it now
