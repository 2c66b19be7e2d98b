"""Checks shared by the vendored browser assets (GraphiQL's and the console's): the files on disk
are exactly the ones SHA256SUMS records, byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_files_are_the_recorded_ones(folder: Path, recorded: Mapping[str, str]) -> None:
    on_disk = {path.name for path in folder.iterdir()} - {"SHA256SUMS"}
    assert set(recorded) == on_disk
    for name, digest in recorded.items():
        assert sha256((folder / name).read_bytes()) == digest, name
