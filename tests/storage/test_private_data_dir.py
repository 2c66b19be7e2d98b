"""The embedded database's data dir is private: other local users can neither read its files nor
rewrite them. `ehr-gateway serve` makes the dir 0700 and every file in it 0600, including files
an earlier release left world-readable, and the server creates new ones that way."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.processes import GatewayProcess

SELECT_EPIC = 'mutation { selectEhrProvider(tenantId: "acme", provider: EPIC) { __typename } }'


def modes(data_dir: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(data_dir.stat().st_mode))}
    for root, directories, files in os.walk(data_dir):
        for name in [*directories, *files]:
            path = Path(root, name)
            found[str(path.relative_to(data_dir))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def test_serve_keeps_the_data_dir_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "db").mkdir(parents=True, mode=0o755)
    data_dir.chmod(0o755)
    left_by_an_earlier_release = data_dir / "db" / "old.db"
    left_by_an_earlier_release.write_text("")
    left_by_an_earlier_release.chmod(0o644)

    gateway = GatewayProcess(data_dir)
    try:
        assert "errors" not in gateway.graphql(SELECT_EPIC)  # the database has written files
        found = modes(data_dir)
    finally:
        gateway.stop()
    directories = {name for name in found if (data_dir / name).is_dir()}
    assert {"db", "db/old.db", "encryption.key", "nx-27017.log"} <= found.keys()
    assert any(name.startswith("db/") and name != "db/old.db" for name in found)
    assert {name: found[name] for name in directories} == dict.fromkeys(directories, "0o700")
    files = found.keys() - directories
    assert {name: found[name] for name in files} == dict.fromkeys(files, "0o600")
