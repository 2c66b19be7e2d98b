"""Findings of a security test of the gateway (second round of the day): each test is an attack
that succeeds today, and fails until the claim of README.md it names holds again. Tests that
leave malformed data behind use a database of their own."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from ehr_gateway.storage.secrets import new_key
from tests.conftest import open_gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_PROVIDER
from tests.gql.test_configuration_changed import (
    CONFIGURATION_CHANGED,
    new_tenant,
    write_versions,
)
from tests.gql.test_entries_retyped_in_the_database import SET_FHIR_PREFIX, _two_versions
from tests.gql.test_tenants_query import directory_config
from tests.processes import GatewayProcess, TransportWsClient

FORGED_SUBJECT = "forged-by-a-database-writer"
AUDIT_LOG = """
query AuditLog($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 50) { entries { subject operation } }
}
"""
VERIFY = """
query Verify($tenantId: ID!) {
  auditIntegrity(tenantId: $tenantId) {
    intact complete
    firstBrokenLink { log sequence entryId reason }
  }
}
"""
# The sort key a gateway gives every audit entry (a string of time and id), as a database
# writer may leave it: out, null, or of another type.
UNORDERED: dict[str, dict[str, Any]] = {
    "no order field": {},
    "an order that is null": {"order": None},
    "an order that is a number": {"order": 99},
}


@pytest.mark.parametrize("order", list(UNORDERED))
async def test_an_unchained_audit_entry_without_a_text_order_is_refused_and_reported(
    database_url: str, tmp_path: Path, tenant_id: str, order: str
) -> None:
    """Attack: in a tenant a gateway chained from version 1, a database writer inserts an audit
    entry of the shape a gateway writes, without a sequence number or chain, and without the
    string sort key ``order`` (left out, null or a number). ``auditLog`` shows it as any other
    entry, but ``auditIntegrity``'s sweep for unchained entries looks for them by an ``order``
    range on strings, so it never reads it and answers intact. Breaks README, "Tamper-evident
    history and audit log": "In a tenant whose history a gateway chained from version 1, every
    unchained audit entry is UNCHAINED, however it is dated", and Security, "Who can reach
    what": "a database write is seen by auditIntegrity / verify-audit". A database of its own:
    the entry stays behind."""
    async for gateway in open_gateway(directory_config(database_url, tmp_path)):
        await _two_versions(gateway, tenant_id)
        forged = {
            "_id": f"{tenant_id}:dforged",
            "tenantId": tenant_id,
            "at": datetime.now(UTC),
            "subject": FORGED_SUBJECT,
            "roles": ["integrator"],
            "operation": "rotateSecrets",
            "outcome": "SAVED",
            "version": None,
            "changes": [],
            "requestId": "",
            **UNORDERED[order],
        }
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            await client[gateway.config.database]["audit_log"].insert_one(forged)
        finally:
            await client.close()

        shown = await gateway.post(AUDIT_LOG, tenantId=tenant_id)
        verified = await gateway.execute(VERIFY, tenantId=tenant_id)

    codes = [error["extensions"]["code"] for error in shown.get("errors", [])]
    assert codes == ["HISTORY_TAMPERED"], shown  # the audit log does not show the forgery
    assert FORGED_SUBJECT not in str(shown)
    integrity = verified["auditIntegrity"]
    assert integrity["intact"] is False, f"forged audit entry not reported: {integrity}"
    assert integrity["firstBrokenLink"]["reason"] == "UNCHAINED", integrity


SETTINGS_HISTORY = """
query SettingsHistory($tenantId: ID!) {
  settingsHistory(tenantId: $tenantId, first: 10) { versions { version } }
}
"""
READ_VERSION = """
query ReadVersion($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }
"""
# A history entry's version as a database writer may retype it.
RETYPED_VERSIONS: dict[str, Any] = {
    "a version that is text": "two",
    "a version that is null": None,
    "a version that is a list": [2],
}


@pytest.mark.parametrize("retyped", list(RETYPED_VERSIONS))
async def test_a_history_entry_whose_version_is_retyped_answers_an_internal_error(
    database_url: str, tmp_path: Path, tenant_id: str, retyped: str
) -> None:
    """Attack: a database writer gives version 2's history entry a ``version`` of another type
    (text, null, a list). ``settingsHistory`` answers INTERNAL_SERVER_ERROR (the entries are
    sorted and verified through ``int(row["version"])``), and with text or a list so do the
    tenant's reads and writes, where ``auditIntegrity`` names the entry ALTERED. Breaks README,
    "Tamper-evident history and audit log": "An entry whose fields a database writer gave types
    no gateway writes ... is named like any other broken link", and the round's fix 3 ("reported
    as tampering ..., never a 500"). A database of its own: the entry stays behind."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await _two_versions(gateway, tenant_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await client[config.database]["tenant_settings_history"].update_one(
            {"tenantId": tenant_id, "version": 2}, {"$set": {"version": RETYPED_VERSIONS[retyped]}}
        )
        async for replica in open_gateway(config):  # nothing cached: reads what is stored
            answers = {
                "settingsHistory": await replica.post(SETTINGS_HISTORY, tenantId=tenant_id),
                "integrationSettings": await replica.post(READ_VERSION, tenantId=tenant_id),
                "updateFhirSettings": await replica.post(
                    SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R5"
                ),
            }
    finally:
        await client.close()

    codes = {
        field: [error["extensions"]["code"] for error in answer.get("errors", [])]
        for field, answer in answers.items()
    }
    assert not any("INTERNAL_SERVER_ERROR" in found for found in codes.values()), codes
    assert codes["settingsHistory"] == ["HISTORY_TAMPERED"], codes


async def test_one_history_entry_with_a_text_version_stops_every_tenants_change_feed(
    database_url: str, tmp_path: Path
) -> None:
    """Attack: a database writer inserts one history entry for any tenant with a ``version``
    that is text. The change feed takes it up, fails on ``int(row["version"])`` while logging
    it as an entry that does not verify, reconnects, resumes before the same entry and fails
    again, every 2 s, for ever ("change feed interrupted (ValueError); reconnecting"): no
    subscriber of any tenant receives a change again, nor does any replica's read cache hear
    of one. Breaks README, "Replicas verify each other": "an entry that fails is dropped and
    logged once on ehr_gateway.security (tenant, version, fault)", and the round's fix 3
    ("reported as tampering ..., never a 500"). A database of its own: the entry stays."""
    database = f"attack4_{uuid.uuid4().hex[:8]}"
    gateway = GatewayProcess(
        tmp_path,
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=database,
        EHRGW_ENCRYPTION_KEY=new_key(),
    )
    try:
        victim, forged_in = new_tenant(gateway), new_tenant(gateway)
        subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
        await subscriber.subscribe("victim", CONFIGURATION_CHANGED, tenantId=victim)
        await asyncio.to_thread(gateway.wait_for_feed_subscribers, 1)
        client: MongoClient[dict[str, Any]] = MongoClient(database_url)
        try:
            client[database]["tenant_settings_history"].insert_one(
                {"tenantId": forged_in, "version": "x", "changedAt": datetime.now(UTC)}
            )
        finally:
            client.close()

        await asyncio.to_thread(write_versions, gateway, victim, "after-the-forgery")
        try:
            change = (await subscriber.next_data("victim", within=30))["configurationChanged"]
        except TimeoutError:
            change = None
        await subscriber.close()
    finally:
        gateway.stop()

    assert change is not None, "the victim tenant's subscriber received nothing in 30 s"
    assert change["version"] == 2, change


RESOLVE = """
query Resolve($id: ID!) { resolveExternalGateway(externalGatewayId: $id) { tenantId provider } }
"""
GATEWAY_ID = """
query GatewayId($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { externalGateway { externalGatewayId } }
}
"""
GATEWAY_ID_PATH = "providers.EPIC.externalGateway.externalGatewayId"


@pytest.mark.parametrize("decoy_tenant", [None, 0], ids=["null tenant", "numeric tenant"])
async def test_a_history_decoy_without_a_text_tenant_hides_the_owner_of_a_swapped_id(
    database_url: str, tmp_path: Path, decoy_tenant: Any
) -> None:
    """Attack: a database writer swaps two Epic tenants' external gateway ids in their
    documents, and inserts one history entry holding the owner's id whose ``tenantId`` is null
    or a number. The lookup through history walks the tenants holding the id in ``tenantId``
    order, where null and numbers sort before every string, and stops at the first entry whose
    tenant is not text: the owner is never checked, and its id resolves to nothing (its Epic
    routes answer as for an unknown id). Breaks README, "External gateway ids resolve to their
    real owner": "when no such document holds it in its checked settings (the id edited out of
    its owner's document, or two tenants' ids swapped), the tenants whose history holds it are
    checked too" (the round's fix 5). A database of its own: the decoy stays behind."""
    config = directory_config(database_url, tmp_path)
    owner, other = (f"gw-{n}-{uuid.uuid4().hex[:6]}" for n in range(2))
    async for gateway in open_gateway(config):
        ids: dict[str, str] = {}
        for tenant in (owner, other):
            await gateway.execute(SELECT_PROVIDER, tenantId=tenant, provider="EPIC")
            await gateway.execute(
                CREATE_EXTERNAL_GATEWAY, tenantId=tenant,
                connection={
                    "name": "EHR", "baseUrl": "https://ehr.example.test/api",
                    "environment": "NON_PRODUCTION",
                },
            )  # fmt: skip
            read = await gateway.execute(GATEWAY_ID, tenantId=tenant)
            ids[tenant] = read["integrationSettings"]["externalGateway"]["externalGatewayId"]
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            database = writer[config.database]
            documents = database["tenant_settings"]
            await documents.update_one({"_id": owner}, {"$set": {GATEWAY_ID_PATH: ids[other]}})
            await documents.update_one({"_id": other}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
            await database["tenant_settings_history"].insert_one(
                {
                    "tenantId": decoy_tenant,
                    "version": 1,
                    "settings": {
                        "providers": {
                            "EPIC": {"externalGateway": {"externalGatewayId": ids[owner]}}
                        }
                    },
                }
            )
        finally:
            await writer.close()

        resolved = await gateway.execute(RESOLVE, id=ids[owner])

    assert resolved["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}, resolved


async def test_a_decoy_document_with_an_object_id_makes_a_swapped_gateway_id_an_internal_error(
    database_url: str, tmp_path: Path
) -> None:
    """Attack: a database writer swaps two Epic tenants' external gateway ids in their
    documents and adds one settings document whose ``_id`` is an object (MongoDB allows any
    non-array ``_id``) holding the owner's id. The lookup checks every document holding the
    id and keeps their ``_id`` in a set; the object is not hashable, and
    ``resolveExternalGateway`` answers INTERNAL_SERVER_ERROR for the owner's id instead of the
    owner. Breaks README, "External gateway ids resolve to their real owner": "an id copied
    into other tenants' documents cannot hide its tenant", and "(the id edited out of its
    owner's document, or two tenants' ids swapped), the tenants whose history holds it are
    checked too" (the round's fix 5); and "Tenant directory rows are sealed": "a document of an
    unexpected shape never stops" the lookups. A database of its own: the decoy stays."""
    config = directory_config(database_url, tmp_path)
    owner, other = (f"gw-{n}-{uuid.uuid4().hex[:6]}" for n in range(2))
    async for gateway in open_gateway(config):
        ids: dict[str, str] = {}
        for tenant in (owner, other):
            await gateway.execute(SELECT_PROVIDER, tenantId=tenant, provider="EPIC")
            await gateway.execute(
                CREATE_EXTERNAL_GATEWAY, tenantId=tenant,
                connection={
                    "name": "EHR", "baseUrl": "https://ehr.example.test/api",
                    "environment": "NON_PRODUCTION",
                },
            )  # fmt: skip
            read = await gateway.execute(GATEWAY_ID, tenantId=tenant)
            ids[tenant] = read["integrationSettings"]["externalGateway"]["externalGatewayId"]
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            documents = writer[config.database]["tenant_settings"]
            await documents.update_one({"_id": owner}, {"$set": {GATEWAY_ID_PATH: ids[other]}})
            await documents.update_one({"_id": other}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
            await documents.insert_one(
                {
                    "_id": {"tenant": owner},
                    "version": 1,
                    "provider": "EPIC",
                    "providers": {"EPIC": {"externalGateway": {"externalGatewayId": ids[owner]}}},
                }
            )
        finally:
            await writer.close()

        resolved = await gateway.post(RESOLVE, id=ids[owner])

    assert "errors" not in resolved, resolved["errors"]
    assert resolved["data"]["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}


AUDIT_LOG_BEFORE = """
query AuditLogBefore($tenantId: ID!, $before: String) {
  auditLog(tenantId: $tenantId, first: 1, before: $before) { entries { subject } }
}
"""


async def test_the_audit_log_before_an_entry_without_an_order_answers_an_internal_error(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Attack: a database writer inserts an audit entry without the ``order`` sort key; any
    viewer of the audit log who pages from it (``before`` its id) gets INTERNAL_SERVER_ERROR:
    the anchor's ``order`` is read without a check. Breaks README, "Tamper-evident history and
    audit log": "auditLog answers HISTORY_TAMPERED for a page holding such an entry instead of
    showing it", and the round's fix 3 ("never a 500"). A database of its own."""
    async for gateway in open_gateway(directory_config(database_url, tmp_path)):
        await _two_versions(gateway, tenant_id)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            await client[gateway.config.database]["audit_log"].insert_one(
                {
                    "_id": f"{tenant_id}:dforged",
                    "tenantId": tenant_id,
                    "at": datetime.now(UTC),
                    "subject": FORGED_SUBJECT,
                    "roles": [],
                    "operation": "rotateSecrets",
                    "outcome": "SAVED",
                    "version": None,
                    "changes": [],
                    "requestId": "",
                }
            )
        finally:
            await client.close()

        paged = await gateway.post(
            AUDIT_LOG_BEFORE, tenantId=tenant_id, before=f"{tenant_id}:dforged"
        )

    codes = [error["extensions"]["code"] for error in paged.get("errors", [])]
    assert "INTERNAL_SERVER_ERROR" not in codes, paged
