"""Attack on rollback as a write path for last session's fixes (FHIR urlPrefix a path only;
custom header names reserved): rollbackSettings reads the old version with the repository's
``version()``, which neither verifies the history chain nor validates the settings as a write
would (they are read as stored, ``STORED_CONTEXT``), and stores them as a new, properly chained
version.

- Anyone who can write to the database edits an old, chained history entry (a urlPrefix
  ``@attacker.example.test/FHIR``, a custom ``X-Forwarded-Host``); the next rollback to it
  applies the forged settings and the gateway chains them, laundering the forgery that the
  history chain exists to stop ("nothing unchained is applied"). A roll-forward of the same
  entry would be refused as HISTORY_TAMPERED.
- A version saved before today's rules (an unchained legacy entry) comes back through a
  rollback with the values the rules now refuse, though an update of the same values is
  refused with INVALID_URL_PREFIX / RESERVED_HEADER.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway

SELECT = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) {
    __typename ... on SettingsSaved { settings { version } }
  }
}
"""
SAVE_PREFIX = """
mutation SavePrefix($tenantId: ID!, $prefix: String!) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
ROLLBACK = """
mutation Rollback($tenantId: ID!, $toVersion: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $toVersion) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
PREFIX = """
query Prefix($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { urlPrefix } }
  }
}
"""
FORGED_PREFIX = "@attacker.example.test/FHIR"


async def _edit_history(database_url: str, tenant_id: str, version: int, change: Any) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await client[TEST_DATABASE]["tenant_settings_history"].update_one(
            {"tenantId": tenant_id, "version": version}, change
        )
    finally:
        await client.close()


async def _prefix(gateway: Gateway, tenant_id: str) -> Any:
    data = await gateway.execute(PREFIX, tenantId=tenant_id)
    return data["integrationSettings"]["fhir"]["urlPrefix"]


async def test_a_rollback_does_not_apply_a_forged_history_entry(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    integrator = gateway.as_caller(tenants=[tenant_id], roles=["integrator"])
    await integrator.execute(SELECT, tenantId=tenant_id)
    saved = await integrator.execute(SAVE_PREFIX, tenantId=tenant_id, prefix="/api/FHIR/R4")
    old = saved["updateFhirSettings"]["settings"]["version"]
    await integrator.execute(SAVE_PREFIX, tenantId=tenant_id, prefix="/api/FHIR/STU3")
    await _edit_history(
        database_url,
        tenant_id,
        old,
        {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FORGED_PREFIX}},
    )

    result = await integrator.post(ROLLBACK, tenantId=tenant_id, toVersion=old)

    assert await _prefix(gateway, tenant_id) != FORGED_PREFIX, result


async def test_a_rollback_does_not_bring_back_a_value_the_rules_now_refuse(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT, tenantId=tenant_id)
        saved = await gateway.execute(SAVE_PREFIX, tenantId=tenant_id, prefix="/legacy")
    old = saved["updateFhirSettings"]["settings"]["version"]
    # As a gateway from before the rule (and before the history chain) stored it.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = client[TEST_DATABASE]["tenant_settings_history"]
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await history.update_one(
            {"tenantId": tenant_id, "version": old},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FORGED_PREFIX}},
        )
        await client[TEST_DATABASE]["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$set": {"providers.EPIC.fhir.urlPrefix": FORGED_PREFIX}}
        )
    finally:
        await client.close()

    async for gateway in open_gateway(config):
        editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
        fixed = await editor.execute(SAVE_PREFIX, tenantId=tenant_id, prefix="/api/FHIR/R4")
        assert fixed["updateFhirSettings"]["__typename"] == "SettingsSaved", fixed
        refused = await editor.execute(SAVE_PREFIX, tenantId=tenant_id, prefix=FORGED_PREFIX)
        assert refused["updateFhirSettings"]["__typename"] == "ValidationFailed", refused

        integrator = gateway.as_caller(tenants=[tenant_id], roles=["integrator"])
        result = await integrator.post(ROLLBACK, tenantId=tenant_id, toVersion=old)

        assert await _prefix(gateway, tenant_id) == "/api/FHIR/R4", result
