"""`ehr-gateway verify-audit`, run as an operator would after the attack: a local pymongo client
rewrote an audit entry's subject behind a served gateway. The command names the first broken
link per tenant and exits 1; on untouched logs it exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from ehr_gateway.storage.audit import AUDIT
from tests.processes import GatewayProcess, environment

SELECT_EPIC = 'mutation { selectEhrProvider(tenantId: "%s", provider: EPIC) { __typename } }'
SELECT_ATHENA = 'mutation { selectEhrProvider(tenantId: "%s", provider: ATHENA) { __typename } }'


def verify_audit(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", "verify-audit", *args],
        env=environment(**settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_verify_audit_names_the_first_broken_link_per_tenant(
    database_url: str, tmp_path: Path
) -> None:
    database = "verify_audit_command"
    settings = {"EHRGW_MONGODB_URL": database_url, "EHRGW_DATABASE": database}
    gateway = GatewayProcess(tmp_path, **settings)
    try:
        for tenant in ("clinic-a", "clinic-b"):
            for document in (SELECT_EPIC, SELECT_ATHENA):
                assert "errors" not in gateway.graphql(document % tenant)
    finally:
        gateway.stop()
    settings["EHRGW_DATA_DIR"] = str(tmp_path)  # where the key is

    intact = verify_audit(**settings)
    assert intact.returncode == 0, intact.stderr
    assert "tenant clinic-a: intact" in intact.stdout
    assert "history: intact, 2 entries verified; head version 2 hash " in intact.stdout
    assert "audit log: intact, 2 entries verified; head sequence 2 hash " in intact.stdout

    client: MongoClient[dict[str, object]] = MongoClient(database_url)
    try:
        client[database][AUDIT].update_one(
            {"tenantId": "clinic-b", "seq": 2}, {"$set": {"subject": "someone-else"}}
        )
    finally:
        client.close()

    broken = verify_audit(**settings)
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert "tenant clinic-a: intact" in lines
    at = lines.index("tenant clinic-b: BROKEN")
    assert lines[at + 2].startswith(
        "  audit log: BROKEN at sequence 2 (entry clinic-b:v000000000002) written "
    )
    assert lines[at + 2].endswith(
        ": ALTERED: its content was changed after it was written (1 entries verified before it)"
    )
    assert "broken chains in 1 of 2 tenants: clinic-b" in broken.stderr

    only_a = verify_audit("--tenant", "clinic-a", **settings)
    assert only_a.returncode == 0 and "clinic-b" not in only_a.stdout


def test_verify_audit_without_the_key_says_so(tmp_path: Path, database_url: str) -> None:
    result = verify_audit(EHRGW_MONGODB_URL=database_url, EHRGW_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("ehr-gateway: no EHRGW_ENCRYPTION_KEY and no key file")
    assert not (tmp_path / "encryption.key").exists()
