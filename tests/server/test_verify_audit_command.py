"""`ehr-gateway verify-audit`, run as an operator would after the attack: a local pymongo client
rewrote an audit entry's subject behind a served gateway. The command names the first broken
link per tenant and exits 1; on untouched logs it exits 0."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bson import Binary, ObjectId
from pymongo import MongoClient

from ehr_gateway.storage.audit import AUDIT
from tests.processes import GatewayProcess, environment

SELECT_EPIC = 'mutation { selectEhrProvider(tenantId: "%s", provider: EPIC) { __typename } }'
SELECT_ATHENA = 'mutation { selectEhrProvider(tenantId: "%s", provider: ATHENA) { __typename } }'
SELECTS = (SELECT_EPIC, SELECT_ATHENA)


def written_by_a_gateway(tmp_path: Path, settings: dict[str, str], documents: list[str]) -> None:
    """Each document run, in order, by a served gateway that is gone before the command runs:
    the command reads the database as an operator finds it."""
    gateway = GatewayProcess(tmp_path, **settings)
    try:
        for document in documents:
            assert "errors" not in gateway.graphql(document)
    finally:
        gateway.stop()


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
    written_by_a_gateway(
        tmp_path,
        settings,
        [document % tenant for tenant in ("clinic-a", "clinic-b") for document in SELECTS],
    )
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


def test_verify_audit_escapes_a_database_writers_tenant_id(
    database_url: str, tmp_path: Path
) -> None:
    """A database writer gives a tenant an id carrying a line break and terminal escapes
    (cursor up, erase line). Printed as stored, it would show the operator a forged "intact"
    line and could erase the line naming a broken tenant: the command escapes what it prints
    from the database, as the text log does."""
    database = "verify_audit_forged_id"  # its own: the forged tenant stays broken
    settings = {"EHRGW_MONGODB_URL": database_url, "EHRGW_DATABASE": database}
    written_by_a_gateway(tmp_path, settings, [SELECT_EPIC % "clinic-a"])
    forged = "clinic-ax: history: intact\ntenant clinic-a: intact\x1b[1A\x1b[2K"
    client: MongoClient[dict[str, object]] = MongoClient(database_url)
    try:
        client[database]["tenant_settings"].insert_one({"_id": forged, "version": 1})
        client[database]["tenant_settings_history"].insert_one(
            {"tenantId": forged, "version": 1, "settings": {}, "changedAt": datetime.now(UTC)}
        )
    finally:
        client.close()

    printed = verify_audit(EHRGW_DATA_DIR=str(tmp_path), **settings)

    assert printed.returncode == 1, printed.stdout
    lines = printed.stdout.splitlines()
    assert "tenant clinic-a: intact" in lines  # the real one, once
    assert lines.count("tenant clinic-a: intact") == 1, printed.stdout
    assert "\x1b" not in printed.stdout + printed.stderr, printed.stdout
    assert (
        "tenant clinic-ax: history: intact\\x0atenant clinic-a: intact\\x1b[1A\\x1b[2K: BROKEN"
        in lines
    )


# Tenant ids no gateway writes, on entries a database writer inserted. (MongoDB hands an object
# back from `distinct` as a dict, which no set can hold; the embedded server hands it back as its
# JSON text, a text tenant like any other, so it is not among them.)
NON_TEXT_TENANTS: list[object] = [
    None, 0, 1.5, True, datetime(2026, 1, 1, tzinfo=UTC), ObjectId(), Binary(b"clinic-a"),
]  # fmt: skip


def test_verify_audit_names_no_tenant_for_entries_whose_tenant_is_not_text(
    database_url: str, tmp_path: Path
) -> None:
    """Every tenant verified is one a gateway could have written: text. An entry whose tenant is
    another type belongs to none, and is not made into one by printing it."""
    database = "verify_audit_non_text_tenants"  # its own: the entries stay behind
    settings = {"EHRGW_MONGODB_URL": database_url, "EHRGW_DATABASE": database}
    written_by_a_gateway(tmp_path, settings, [SELECT_EPIC % "clinic-a"])
    client: MongoClient[dict[str, object]] = MongoClient(database_url)
    try:
        for collection in ("tenant_settings_history", AUDIT):
            client[database][collection].insert_many(
                [{"tenantId": tenant, "version": 1} for tenant in NON_TEXT_TENANTS]
            )
    finally:
        client.close()

    printed = verify_audit(EHRGW_DATA_DIR=str(tmp_path), **settings)

    assert printed.returncode == 0, printed.stdout + printed.stderr
    tenants = [line for line in printed.stdout.splitlines() if line.startswith("tenant ")]
    assert tenants == ["tenant clinic-a: intact"], printed.stdout
