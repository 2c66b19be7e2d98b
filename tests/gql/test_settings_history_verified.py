"""settingsHistory and settingsDiff show only versions a gateway wrote: each version served is
verified (its chain link and MAC, as a rollback verifies the version it applies). A version a
database writer edited is refused with HISTORY_TAMPERED naming it, logged once on
`ehr_gateway.security` without its values; the versions around it are still shown."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway
from tests.documents import EXPORT_SETTINGS, SELECT_EPIC

SET_FHIR_PREFIX = """
mutation SetFhirPrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) { __typename }
}
"""
READ_HISTORY = """
query ReadHistory($tenantId: ID!, $first: Int!) {
  settingsHistory(tenantId: $tenantId, first: $first) {
    versions { version settings { fhir { ... on EpicFhirSettings { urlPrefix } } } }
  }
}
"""
DIFF = """
query Diff($tenantId: ID!, $from: Int!, $to: Int!) {
  settingsDiff(tenantId: $tenantId, fromVersion: $from, toVersion: $to) {
    __typename
    ... on SettingsDiff { changes { path before after } }
  }
}
"""
OLD_PREFIX = "/FHIR/R4"
NEW_PREFIX = "/FHIR/R4-new"
FOREIGN_PREFIX = "/attacker/FHIR"


async def _edit_version_2(database_url: str, tenant_id: str) -> None:
    """A database writer without the key rewrites version 2's URL prefix."""
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[TEST_DATABASE]["tenant_settings_history"].update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
    finally:
        await writer.close()


async def test_an_edited_version_is_refused_by_history_and_diff_and_logged_once(
    database_url: str, gateway: Gateway, tenant_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)  # v2
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)  # v3
    await _edit_version_2(database_url, tenant_id)

    with caplog.at_level(logging.WARNING, logger="ehr_gateway.security"):
        history = await gateway.post(READ_HISTORY, tenantId=tenant_id, first=10)
        diff = await gateway.post(DIFF, tenantId=tenant_id, **{"from": 1, "to": 2})
        newest = await gateway.execute(READ_HISTORY, tenantId=tenant_id, first=1)
        exported = await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id)

    for refused in (history, diff):
        assert FOREIGN_PREFIX not in str(refused)
        (error,) = refused["errors"]
        assert error["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
        assert "version 2" in error["message"]
    # The version after it still links to what version 2 was when it was written.
    assert newest["settingsHistory"]["versions"] == [
        {"version": 3, "settings": {"fhir": {"urlPrefix": NEW_PREFIX}}}
    ]
    epic = exported["exportSettings"]["providers"]["EPIC"]
    assert epic["fhir"]["urlPrefix"] == NEW_PREFIX
    security = [r.getMessage() for r in caplog.records if r.name == "ehr_gateway.security"]
    assert [line for line in security if "version 2" in line and tenant_id in line] == [
        f"tenant {tenant_id}: history version 2 does not verify (ALTERED); not applied, not audited"
    ]
    assert not any(FOREIGN_PREFIX in line for line in caplog.messages)


async def test_a_diff_of_verified_versions_is_served(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)

    diff = await gateway.execute(DIFF, tenantId=tenant_id, **{"from": 2, "to": 3})

    assert diff["settingsDiff"]["changes"] == [
        {"path": "providers.EPIC.fhir.urlPrefix", "before": OLD_PREFIX, "after": NEW_PREFIX}
    ]
