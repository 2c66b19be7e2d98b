"""History and the audit log are tamper-evident. The attack: the embedded database asks no
credentials, so a local process with pymongo can rewrite an entry behind the gateway's back.
Versions are written through a gateway, then such a client changes, deletes, moves or forges
entries, and verification names the first broken link: which entry, and why."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.chain import audit_link
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.integrity import Log, Reason, TenantIntegrity, verify_tenant
from ehr_gateway.storage.legacy import adopt_legacy_history
from ehr_gateway.storage.repository import HISTORY
from ehr_gateway.storage.rotation import rotate
from ehr_gateway.storage.secrets import ChainKeys, SecretBox, new_key
from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import SELECT_EPIC

UPDATE_EHR = """
mutation UpdateEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""


@asynccontextmanager
async def serving(
    data_dir: Path, database: str, database_url: str, **settings: Any
) -> AsyncIterator[Gateway]:
    """An in-process gateway on ``database``, shut down on leaving."""
    config = gateway_config(database_url, data_dir, **settings)
    opened = cast(
        AsyncGenerator[Gateway, None],
        open_gateway(config.model_copy(update={"database": database})),
    )
    try:
        yield await anext(opened)
    finally:
        await opened.aclose()


def soap(username: str, password: str = "soap-pa55") -> dict[str, Any]:
    return {"epic": {"soapUsername": username, "soapPassword": password}}


async def save(gateway: Gateway, document: str, **variables: Any) -> None:
    data = await gateway.execute(document, **variables)
    assert next(iter(data.values()))["__typename"] == "SettingsSaved", data


async def write_versions(gateway: Gateway, tenant_id: str) -> None:
    """Versions 1 to 4 (the SOAP password, a secret, twice) and a denied attempt between 3 and
    4: audit sequence 1-3 are versions 1-3, 4 the denial, 5 version 4."""
    await save(gateway, SELECT_EPIC, tenantId=tenant_id)
    for password in ("soap-first", "soap-second"):
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("soap-user", password))
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"], subject="curious-viewer")
    denied = await viewer.post(UPDATE_EHR, tenantId=tenant_id,
                               input={"epic": {"soapUsername": "someone"}})  # fmt: skip
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("user-2", "soap-second"))


@pytest.fixture
def intruder(database_url: str) -> Iterator[Database[dict[str, Any]]]:
    """A local process's own pymongo client on the gateway's database."""
    client: MongoClient[dict[str, Any]] = MongoClient(database_url, tz_aware=True)
    yield client[TEST_DATABASE]
    client.close()


@pytest.fixture
async def written(gateway: Gateway, tenant_id: str) -> str:
    await write_versions(gateway, tenant_id)
    return tenant_id


async def verify(database_url: str, data_dir: Path, tenant_id: str) -> TenantIntegrity:
    """Verify as the gateway using ``data_dir`` (its key file) would."""
    client = connect(database_url)
    try:
        keys = SecretBox.from_data_dir(data_dir).chain
        return await verify_tenant(client[TEST_DATABASE], keys, tenant_id)
    finally:
        await client.close()


def first_broken(result: TenantIntegrity) -> tuple[Log, int | None, Reason]:
    broken = result.first_broken
    assert broken is not None, "the tampering went unnoticed"
    return broken.log, broken.position, broken.reason


async def test_logs_as_written_verify(written: str, database_url: str, tmp_path: Path) -> None:
    result = await verify(database_url, tmp_path, written)
    assert result.intact
    assert (result.history.checked, result.history.legacy, result.history.head_position) == (
        4, 0, 4,
    )  # fmt: skip
    assert (result.audit.checked, result.audit.legacy, result.audit.head_position) == (5, 0, 5)


async def test_a_rewritten_audit_subject_is_the_first_broken_link(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    changed = intruder[AUDIT].update_one(
        {"tenantId": written, "seq": 2}, {"$set": {"subject": "someone-else"}}
    )
    assert changed.modified_count == 1
    result = await verify(database_url, tmp_path, written)
    assert first_broken(result) == (Log.AUDIT, 2, Reason.ALTERED)
    assert result.audit.broken is not None
    assert result.audit.broken.entry_id == f"{written}:v000000000002"
    assert result.audit.checked == 1
    assert result.history.intact


async def test_a_forgery_with_a_recomputed_hash_fails_its_mac(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    """The intruder knows the scheme but not the key: the hash fits, the MAC cannot."""
    row = intruder[AUDIT].find_one({"tenantId": written, "seq": 4})
    assert row is not None and row["outcome"] == "DENIED"
    row["subject"] = "nobody"
    forged = audit_link({k: v for k, v in row.items() if k != "chain"}, row["chain"]["prev"],
                        ChainKeys(os.urandom(32)))  # fmt: skip
    row["chain"].update(hash=forged["hash"], mac=forged["mac"])  # the real key's id kept
    intruder[AUDIT].replace_one({"_id": row["_id"]}, row)
    result = await verify(database_url, tmp_path, written)
    assert first_broken(result) == (Log.AUDIT, 4, Reason.BAD_MAC)


async def test_a_rewritten_history_change_is_named_by_version(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    intruder[HISTORY].update_one(
        {"tenantId": written, "version": 2},
        {"$set": {"actor": "someone-else", "settings.providers.EPIC.ehr.soapUsername": "x"}},
    )
    result = await verify(database_url, tmp_path, written)
    assert first_broken(result) == (Log.HISTORY, 2, Reason.ALTERED)
    assert result.history.checked == 1
    assert result.audit.intact


async def test_a_secret_swapped_for_an_older_one_fails_the_mac(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    """Sealed secrets are outside the hash (rotation re-seals them) but inside the MAC: the
    ciphertext of version 2's password (which opens: same tenant, same field) put in version 3."""
    older = intruder[HISTORY].find_one({"tenantId": written, "version": 2})
    assert older is not None
    sealed = older["settings"]["providers"]["EPIC"]["ehr"]["soapPassword"]
    intruder[HISTORY].update_one(
        {"tenantId": written, "version": 3},
        {"$set": {f"settings.providers.EPIC.ehr.soapPassword.{name}": sealed[name]
                  for name in ("ciphertext", "fingerprint")}},
    )  # fmt: skip
    result = await verify(database_url, tmp_path, written)
    assert first_broken(result) == (Log.HISTORY, 3, Reason.BAD_MAC)


async def test_deleted_entries_are_missing_links(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    intruder[AUDIT].delete_one({"tenantId": written, "seq": 3})
    intruder[HISTORY].delete_one({"tenantId": written, "version": 4})  # the newest
    result = await verify(database_url, tmp_path, written)
    assert result.audit.broken is not None and result.history.broken is not None
    assert (result.audit.broken.position, result.audit.broken.reason) == (4, Reason.MISSING)
    assert result.audit.broken.message == "sequence 3 is missing before it"
    # The settings are at version 4; history now ends at 3.
    assert (result.history.broken.position, result.history.broken.reason) == (4, Reason.MISSING)


async def test_a_renumbered_entry_breaks_the_link(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    """Entries 2 and 3 swap places (their sequence numbers)."""
    entries = intruder[AUDIT]
    entries.update_one({"tenantId": written, "seq": 2}, {"$set": {"seq": -2}})
    entries.update_one({"tenantId": written, "seq": 3}, {"$set": {"seq": 2}})
    entries.update_one({"tenantId": written, "seq": -2}, {"$set": {"seq": 3}})
    result = await verify(database_url, tmp_path, written)
    assert first_broken(result) == (Log.AUDIT, 2, Reason.BROKEN_LINK)


async def test_an_entry_slipped_in_without_a_mac_is_unchained(
    written: str, database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    newest = intruder[AUDIT].find_one({"tenantId": written, "seq": 5})
    assert newest is not None
    forged = {k: v for k, v in newest.items() if k not in ("chain", "seq")}
    forged.update(_id=f"{written}:forged", subject="someone-else", order=newest["order"] + "z")
    intruder[AUDIT].insert_one(forged)
    result = await verify(database_url, tmp_path, written)
    assert result.audit.broken is not None
    assert (result.audit.broken.entry_id, result.audit.broken.reason) == (
        f"{written}:forged", Reason.UNCHAINED,
    )  # fmt: skip


async def test_history_from_before_the_chain_is_a_fault_until_adopted_and_audit_entries_legacy(
    database_url: str, tmp_path: Path, tenant_id: str, intruder: Database[dict[str, Any]]
) -> None:
    async with serving(tmp_path, TEST_DATABASE, database_url) as gateway:
        await save(gateway, SELECT_EPIC, tenantId=tenant_id)
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("a"))
    # As the previous release stored them: no sequence number, no chain, no seal, nothing of
    # what came after the chain (idempotency keys, the directory row).
    for collection in (HISTORY, AUDIT):
        intruder[collection].update_many(
            {"tenantId": tenant_id}, {"$unset": {"chain": "", "seq": "", "idempotency": ""}}
        )
    intruder["tenant_settings"].update_one(
        {"_id": tenant_id}, {"$unset": {"seal": "", "directory": ""}}
    )
    # Nothing trusts an unchained history entry, so nothing reports it as intact.
    unadopted = await verify(database_url, tmp_path, tenant_id)
    assert first_broken(unadopted) == (Log.HISTORY, 1, Reason.UNCHAINED)
    assert unadopted.history.broken is not None
    assert "chain-legacy-history" in unadopted.history.broken.message

    client = connect(database_url)
    try:
        keys = SecretBox.from_data_dir(tmp_path).chain
        adopted = await adopt_legacy_history(client[TEST_DATABASE], keys, tenant_id)
        assert (adopted.signed, adopted.refused) == (2, None)
    finally:
        await client.close()
    async with serving(tmp_path, TEST_DATABASE, database_url) as gateway:
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("b"))
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("c"))
    result = await verify(database_url, tmp_path, tenant_id)
    assert result.intact
    assert (result.history.legacy, result.history.checked) == (0, 4)
    assert (result.audit.legacy, result.audit.checked) == (2, 2)
    # Past the start of the chain, an entry without a MAC is a break, not legacy.
    intruder[HISTORY].update_one({"tenantId": tenant_id, "version": 4}, {"$unset": {"chain": ""}})
    assert first_broken(await verify(database_url, tmp_path, tenant_id)) == (
        Log.HISTORY, 4, Reason.UNCHAINED,
    )  # fmt: skip


async def _adopted(
    database_url: str, tmp_path: Path, tenant_id: str, intruder: Database[dict[str, Any]]
) -> None:
    """A tenant with two versions and their audit entries from before the chain, adopted, then
    two versions written by today's gateway."""
    async with serving(tmp_path, TEST_DATABASE, database_url) as gateway:
        await save(gateway, SELECT_EPIC, tenantId=tenant_id)
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("a"))
    for collection in (HISTORY, AUDIT):
        intruder[collection].update_many(
            {"tenantId": tenant_id}, {"$unset": {"chain": "", "seq": "", "idempotency": ""}}
        )
    intruder["tenant_settings"].update_one(
        {"_id": tenant_id}, {"$unset": {"seal": "", "directory": ""}}
    )
    client = connect(database_url)
    try:
        keys = SecretBox.from_data_dir(tmp_path).chain
        adopted = await adopt_legacy_history(client[TEST_DATABASE], keys, tenant_id)
        assert adopted.refused is None, adopted
    finally:
        await client.close()
    async with serving(tmp_path, TEST_DATABASE, database_url) as gateway:
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("b"))
        await save(gateway, UPDATE_EHR, tenantId=tenant_id, input=soap("c"))


# What a database writer does to an adopted tenant's audit entries from before the chain,
# which carry no MAC of their own, and how the walk names it: adoption recorded how many there
# were and a hash over them, under version 1's MAC.
LEGACY_EDITS = {
    "one edited": ("edit", Reason.ALTERED),
    "one removed": ("remove", Reason.MISSING),
    "one added, dated before the chain": ("add", Reason.UNCHAINED),
}


@pytest.mark.parametrize("edit", list(LEGACY_EDITS))
async def test_audit_entries_from_before_the_chain_are_those_adoption_recorded(
    database_url: str,
    tmp_path: Path,
    tenant_id: str,
    intruder: Database[dict[str, Any]],
    edit: str,
) -> None:
    await _adopted(database_url, tmp_path, tenant_id, intruder)
    result = await verify(database_url, tmp_path, tenant_id)
    assert result.intact and (result.audit.legacy, result.audit.checked) == (2, 2)
    action, reason = LEGACY_EDITS[edit]
    legacy = {"tenantId": tenant_id, "seq": {"$exists": False}}
    first = intruder[AUDIT].find_one(legacy, sort=[("order", 1)])
    assert first is not None
    if action == "edit":
        intruder[AUDIT].update_one({"_id": first["_id"]}, {"$set": {"subject": "someone-else"}})
    elif action == "remove":
        intruder[AUDIT].delete_one({"_id": first["_id"]})
    else:
        intruder[AUDIT].insert_one(
            {**first, "_id": f"{tenant_id}:forged", "order": first["order"][:-1] + "!"}
        )

    tampered = await verify(database_url, tmp_path, tenant_id)

    assert not tampered.intact
    assert tampered.audit.broken is not None
    assert (tampered.audit.broken.log, tampered.audit.broken.reason) == (Log.AUDIT, reason)


async def test_an_unchained_audit_entry_dated_before_a_chain_begun_by_a_gateway_is_unchained(
    database_url: str, tmp_path: Path, tenant_id: str, intruder: Database[dict[str, Any]]
) -> None:
    """A tenant whose history a gateway chained from version 1 has no audit entry from before
    the chain: one without a MAC is a break, however early it is dated."""
    async with serving(tmp_path, TEST_DATABASE, database_url) as gateway:
        await write_versions(gateway, tenant_id)
    first = intruder[AUDIT].find_one({"tenantId": tenant_id, "seq": 1})
    assert first is not None
    backdated = {k: v for k, v in first.items() if k not in ("chain", "seq")}
    backdated.update(_id=f"{tenant_id}:backdated", order="0" * 15 + f":{tenant_id}:backdated")
    intruder[AUDIT].insert_one(backdated)

    result = await verify(database_url, tmp_path, tenant_id)

    assert result.audit.broken is not None
    assert (result.audit.broken.entry_id, result.audit.broken.reason) == (
        f"{tenant_id}:backdated", Reason.UNCHAINED,
    )  # fmt: skip
    assert result.audit.legacy == 0


async def test_concurrent_writes_and_denials_on_two_replicas_chain_without_forks(
    database_url: str, tmp_path: Path, tenant_id: str, intruder: Database[dict[str, Any]]
) -> None:
    """Two gateways on one database (replicas): writes to one tenant and denied attempts on it,
    all at once. Every one is audited, in one chain with no gaps and no forks. (The denials are
    by 24 different callers: a caller's repeats of one refusal are audited once a minute.)"""
    async with (
        # Consistency under contention, not latency: time enough on a loaded machine.
        serving(tmp_path, TEST_DATABASE, database_url, db_timeout_ms=60_000) as first,
        serving(tmp_path, TEST_DATABASE, database_url, db_timeout_ms=60_000) as second,
    ):
        await save(first, SELECT_EPIC, tenantId=tenant_id)

        async def write(gateway: Gateway, name: str) -> None:
            await save(gateway, UPDATE_EHR, tenantId=tenant_id,
                       input=soap(name))  # fmt: skip

        async def deny(gateway: Gateway, subject: str) -> None:
            viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"], subject=subject)
            body = await viewer.post(UPDATE_EHR, tenantId=tenant_id,
                                     input={"epic": {"soapUsername": "no"}})  # fmt: skip
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        await asyncio.gather(
            *(
                write(gateway, f"user-{n}-{side}")
                for n in range(12)
                for side, gateway in enumerate((first, second))
            ),
            *(
                deny(gateway, f"viewer-{n}-{side}")
                for n in range(12)
                for side, gateway in enumerate((first, second))
            ),
        )
    result = await verify(database_url, tmp_path, tenant_id)
    assert result.intact, result.first_broken
    assert result.history.checked == 25  # the provider, then 24 writes
    assert result.audit.checked == 25 + 24
    sequences = sorted(row["seq"] for row in intruder[AUDIT].find({"tenantId": tenant_id}))
    assert sequences == list(range(1, 50))


async def test_rotation_re_macs_what_verifies_and_leaves_forgeries_broken(
    database_url: str, tmp_path: Path, intruder: Database[dict[str, Any]]
) -> None:
    """rotate-secrets with EHRGW_ENCRYPTION_KEY: entries MACed under key A are MACed again under
    key B, after which a deployment holding only key B verifies them; a forged entry is not
    given a fresh MAC by the rotation."""
    key_a, key_b = new_key(), new_key()
    database = f"chain_rotation_{uuid.uuid4().hex[:12]}"
    sound, forged = f"sound-{uuid.uuid4().hex[:6]}", f"forged-{uuid.uuid4().hex[:6]}"
    async with serving(tmp_path, database, database_url, encryption_key=key_a) as gateway:
        await write_versions(gateway, sound)
        await write_versions(gateway, forged)
    intruder.client[database][AUDIT].update_one(
        {"tenantId": forged, "seq": 2}, {"$set": {"subject": "someone-else"}}
    )
    rotated = await rotate(mongodb_url=database_url, database=database, data_dir=tmp_path,
                           encryption_key=key_b, previous_keys=key_a)  # fmt: skip
    assert (rotated.remaced, rotated.unverified) == (4 + 5 + 4 + 4, 1)
    only_b = SecretBox.from_base64(key_b).chain
    client = connect(database_url)
    try:
        untouched = await verify_tenant(client[database], only_b, sound)
        broken = await verify_tenant(client[database], only_b, forged)
    finally:
        await client.close()
    assert untouched.intact, untouched.first_broken
    assert (untouched.history.checked, untouched.audit.checked) == (4, 5)
    # Still broken at the forged entry: under key A it did not verify, so it kept A's MAC.
    assert first_broken(broken) == (Log.AUDIT, 2, Reason.ALTERED)
