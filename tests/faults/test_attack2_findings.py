"""Attacks by a database writer without the deployment's key that the document seal and the
history chain do not yet stop (found by an attack pass; each test fails on the code as it is).

- `settingsHistory` serves history entries without verifying them: an old entry's settings
  edited in the database are shown as what was stored.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.processes import environment

SELECT_EPIC = """
mutation SelectEpic($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
SET_FHIR_PREFIX = """
mutation SetFhirPrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) { __typename }
}
"""
READ_HISTORY = """
query ReadHistory($tenantId: ID!) {
  settingsHistory(tenantId: $tenantId, first: 10) {
    versions { version settings { fhir { ... on EpicFhirSettings { urlPrefix } } } }
  }
}
"""
OLD_PREFIX = "/FHIR/R4"
NEW_PREFIX = "/FHIR/R4-new"
FOREIGN_PREFIX = "/attacker/FHIR"


async def _collection(database_url: str, name: str) -> tuple[Any, Any]:
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    return writer, writer[TEST_DATABASE][name]


async def test_an_edited_history_entry_is_not_served_as_stored(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)
    writer, history = await _collection(database_url, "tenant_settings_history")
    try:
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
    finally:
        await writer.close()

    body = await gateway.post(READ_HISTORY, tenantId=tenant_id)

    served = [
        version["settings"]["fhir"]["urlPrefix"]
        for version in ((body.get("data") or {}).get("settingsHistory") or {}).get("versions", [])
    ]
    assert FOREIGN_PREFIX not in served, body


ROLLBACK = """
mutation Rollback($tenantId: ID!, $to: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $to) {
    __typename
    ... on SettingsSaved { settings { version fhir { ... on EpicFhirSettings { urlPrefix } } } }
  }
}
"""


def _adopt_every_tenant(database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`ehr-gateway chain-legacy-history` without --tenant, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", "chain-legacy-history"],
        env=environment(
            EHRGW_MONGODB_URL=database_url, EHRGW_DATABASE=TEST_DATABASE,
            EHRGW_DATA_DIR=str(data_dir),
        ),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_adoption_does_not_sign_a_chained_history_stripped_and_edited(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """The operator runs `chain-legacy-history` (every tenant with unchained entries, the
    default) for tenants upgraded from before the chain. A database writer has stripped the
    links of a tenant whose history was chained from version 1 and edited a version: it looks
    like history from before the chain, and the command signs the edit into the chain."""
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)  # v2
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)  # v3
    writer, history = await _collection(database_url, "tenant_settings_history")
    try:
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
    finally:
        await writer.close()

    adopted = _adopt_every_tenant(database_url, tmp_path)
    async for gateway in open_gateway(config):
        rolled = await gateway.post(ROLLBACK, tenantId=tenant_id, to=2)

    assert FOREIGN_PREFIX not in str(rolled), (adopted.stdout, rolled)


AUDIT_INTEGRITY = """
query Integrity($tenantId: ID!) {
  auditIntegrity(tenantId: $tenantId) { intact checkedEntries legacyEntries }
}
"""


async def test_a_chained_history_stripped_and_edited_is_not_reported_intact(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    """Stripping every link of a tenant whose history was chained from version 1 (and editing a
    version) turns its entries into "entries from before the logs were chained"."""
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)
    writer, history = await _collection(database_url, "tenant_settings_history")
    try:
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
    finally:
        await writer.close()

    report = await gateway.execute(AUDIT_INTEGRITY, tenantId=tenant_id)

    assert report["auditIntegrity"]["intact"] is False, report
