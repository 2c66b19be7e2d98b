"""What a save stores (history entry, audit entry, settings document with its seal and directory
row) is what the storage layer's pure builders make from the same inputs: ``version_write`` for
the history entry and document, ``version_row`` and ``chained_entry`` for the audit entry. Code
that must write versions exactly as a save would (bench/chained_history.py seeds long histories
with them) cannot drift from save."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, PatientRestriction, SettingsBlock
from ehr_gateway.storage.audit import AUDIT, Head, chained_entry, version_row
from ehr_gateway.storage.chain import GENESIS
from ehr_gateway.storage.directory import DIRECTORY, LISTED_AT
from ehr_gateway.storage.repository import (
    HISTORY,
    SETTINGS,
    SettingsRepository,
    version_write,
)
from ehr_gateway.storage.secrets import ChainKeys
from tests.conftest import TEST_DATABASE

AUDITED = {"roles": ["integrator"], "operation": "updatePatientRestriction", "requestId": "r-1",
           "changes": [{"path": "patientRestriction.expression", "before": None,
                        "after": "age < 18"}]}  # fmt: skip


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url, tz_aware=True)
    yield client
    await client.close()


async def test_each_saved_version_is_what_version_write_and_the_audit_builders_make(
    client: AsyncMongoClient[dict[str, Any]],
) -> None:
    keys = ChainKeys(os.urandom(32))
    repository = SettingsRepository(client, TEST_DATABASE, keys)
    await repository.prepare()
    tenant_id = f"pure-{uuid.uuid4().hex[:8]}"
    settings = TenantSettings(tenant_id=tenant_id, provider=EhrProvider.EPIC)
    asked: list[tuple[TenantSettings, dict[str, Any] | None]] = []
    for n, expression in enumerate(["age < 18", "age < 13"]):
        changed = settings.model_copy(
            update={"patient_restriction": PatientRestriction(expression=expression)}
        )
        idempotency = {"key": f"k-{n}", "request": "r"} if n else None
        saved = await repository.save(
            changed, base_version=n, actor="tester",
            changed_blocks=[SettingsBlock.PATIENT_RESTRICTION],
            changed_paths=["patientRestriction.expression"], audit=AUDITED, idempotency=idempotency,
        )  # fmt: skip
        assert isinstance(saved, TenantSettings)
        asked.append((changed, idempotency))
        settings = saved

    database = client[TEST_DATABASE]
    history = await database[HISTORY].find({"tenantId": tenant_id}, sort=[("version", 1)]).to_list()
    audit = await database[AUDIT].find({"tenantId": tenant_id}, sort=[("seq", 1)]).to_list()
    document = await database[SETTINGS].find_one({"_id": tenant_id})
    assert [row["version"] for row in history] == [1, 2] and len(audit) == 2
    assert document is not None and document["version"] == 2

    prev, head = GENESIS, Head(tenant_id, 0, GENESIS)
    for (changed, idempotency), stored, stored_audit in zip(asked, history, audit, strict=True):
        version = stored["version"]
        write = version_write(
            changed, base_version=version - 1, prev=prev, at=stored["changedAt"], actor="tester",
            changed_blocks=[SettingsBlock.PATIENT_RESTRICTION],
            changed_paths=["patientRestriction.expression"], keys=keys,
            identifier_defaults=repository.identifier_defaults, audit=AUDITED,
            idempotency=idempotency,
            listed_at=document[DIRECTORY][LISTED_AT] if version == 2 else None,
        )  # fmt: skip
        assert write.entry == {k: v for k, v in stored.items() if k != "_id"}, version
        expected_audit = chained_entry(version_row(write.entry), head, keys)
        assert expected_audit == stored_audit, version
        prev = write.entry["chain"]["hash"]
        head = Head(tenant_id, expected_audit["seq"], expected_audit["chain"]["hash"])
    # The document holds the newest version: its settings, seal and sealed directory row.
    assert write.document == document
    assert write.as_read.patient_restriction.expression == "age < 13"
