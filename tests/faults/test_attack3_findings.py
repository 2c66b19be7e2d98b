"""Holes found by a security tester attacking the gateway's claims from outside: each test makes
the attack (as a caller with a token, a database writer without the key, or an operator running
a sub-command) and asserts what the README promises. Each fails on the code it was written
against; the docstring names the attack and the claim it breaks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_PROVIDER
from tests.gql.test_audit_integrity_pages import VERIFY_ALL, write_versions
from tests.gql.test_tenants_query import TENANTS, directory_config
from tests.server.test_chain_legacy_history_command import _settings, ehr_gateway

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
READ_FHIR_PREFIX = """
query ReadFhirPrefix($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { urlPrefix } }
  }
}
"""
GATEWAY_ID = """
query GatewayId($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { externalGateway { externalGatewayId } }
}
"""
RESOLVE = """
query Resolve($id: ID!) { resolveExternalGateway(externalGatewayId: $id) { tenantId provider } }
"""
AUDIT_LOG = """
query AuditLog($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 50) { entries { subject operation outcome } }
}
"""
HISTORY = "tenant_settings_history"
SETTINGS = "tenant_settings"
AUDIT = "audit_log"
OLD_PREFIX = "/FHIR/R4"
NEW_PREFIX = "/FHIR/R4-new"
FOREIGN_PREFIX = "/attacker/FHIR"


def _writer(database_url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A database writer's own client: the embedded database asks no credentials."""
    return AsyncMongoClient(database_url)


async def test_chain_legacy_history_signs_an_edit_when_only_the_directory_row_seal_is_left(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Attack: a database writer strips every trace the command looks for (history links, the
    audit log's numbers and links, the document's seal), edits version 2, and leaves the
    directory row's seal (`directory.seal`, an HMAC with the chain's key that only a gateway
    with the chain writes). Claim broken: `chain-legacy-history` "refuses ... any trace of the
    chain" and never signs what a database writer edited; it signs the edit into the chain."""
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)  # v2
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)  # v3
    client = _writer(database_url)
    try:
        db = client[TEST_DATABASE]
        row = await db[SETTINGS].find_one({"_id": tenant_id})
        assert row is not None and row["directory"]["seal"]["mac"], row
        await db[HISTORY].update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await db[AUDIT].update_many({"tenantId": tenant_id}, {"$unset": {"chain": "", "seq": ""}})
        await db[SETTINGS].update_one({"_id": tenant_id}, {"$unset": {"seal": ""}})
        await db[HISTORY].update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
        adopted = ehr_gateway("chain-legacy-history", "--tenant", tenant_id, **_settings(
            database_url, tmp_path))  # fmt: skip
        signed = await db[HISTORY].count_documents(
            {"tenantId": tenant_id, "chain.mac": {"$exists": True}}
        )
    finally:
        await client.close()

    assert adopted.returncode == 1, adopted.stdout
    assert "LEFT AS IT WAS" in adopted.stdout, adopted.stdout
    assert signed == 0


async def test_an_owners_gateway_id_edited_away_in_its_document_hides_the_owner(
    gateway: Gateway, database_url: str
) -> None:
    """Attack: a database writer swaps the external gateway ids of two tenants' documents (or
    overwrites the owner's). The gateway itself notices the edit and serves the owner's checked
    settings, which still hold its id; yet `resolveExternalGateway` (and so the Epic routes)
    looks the id up only in the edited documents and answers null. Claim broken: "the Epic
    routes check every document holding an id and answer the tenant whose checked settings hold
    it, so an id ... cannot hide its tenant"."""
    owner, other = (f"gw-{n}-{uuid.uuid4().hex[:6]}" for n in range(2))
    ids: dict[str, str] = {}
    for tenant in (owner, other):
        await gateway.execute(SELECT_PROVIDER, tenantId=tenant, provider="EPIC")
        await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant, connection={
            "name": "EHR", "baseUrl": "https://ehr.example.test/api",
            "environment": "NON_PRODUCTION"})  # fmt: skip
        read = await gateway.execute(GATEWAY_ID, tenantId=tenant)
        ids[tenant] = read["integrationSettings"]["externalGateway"]["externalGatewayId"]
    client = _writer(database_url)
    try:
        documents = client[TEST_DATABASE][SETTINGS]
        path = "providers.EPIC.externalGateway.externalGatewayId"
        await documents.update_one({"_id": owner}, {"$set": {path: ids[other]}})
        await documents.update_one({"_id": other}, {"$set": {path: ids[owner]}})
    finally:
        await client.close()

    served = await gateway.execute(GATEWAY_ID, tenantId=owner)
    resolved = await gateway.execute(RESOLVE, id=ids[owner])

    assert served["integrationSettings"]["externalGateway"]["externalGatewayId"] == ids[owner]
    assert resolved["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}


async def test_an_older_sealed_document_is_served_once_the_newest_entry_is_edited(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Attack: a database writer saves the sealed document at version 2, lets an integrator
    write version 3, then puts the version 2 document back and changes any byte of history
    entry 3 (here its `actor`), so the "is there a newer version?" check finds only a forged
    entry. A fresh replica then serves version 2 as current (writes, inconsistently, answer
    HISTORY_TAMPERED). Claim broken: "an older sealed document put back by a database writer is
    never served"; a tenant whose history does not verify answers HISTORY_TAMPERED."""
    config = gateway_config(database_url, tmp_path)
    client = _writer(database_url)
    try:
        db = client[TEST_DATABASE]
        async for gateway in open_gateway(config):
            await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
            await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)  # v2
            older = await db[SETTINGS].find_one({"_id": tenant_id})
            await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)  # v3
        assert older is not None and older["seal"], older
        await db[HISTORY].update_one(
            {"tenantId": tenant_id, "version": 3}, {"$set": {"actor": "someone-else"}}
        )
        await db[SETTINGS].replace_one({"_id": tenant_id}, older)
    finally:
        await client.close()

    async for replica in open_gateway(gateway_config(database_url, tmp_path)):
        read = await replica.post(READ_FHIR_PREFIX, tenantId=tenant_id)

        assert read.get("data", {}).get("integrationSettings") is None, read
        assert read["errors"][0]["extensions"]["code"] == "HISTORY_TAMPERED", read


async def test_an_audit_entry_inserted_with_a_date_before_the_chain_passes_as_intact(
    gateway: Gateway, database_url: str, tenant_id: str
) -> None:
    """Attack: a database writer inserts an unchained audit entry (an integrator's rollback that
    never happened) into a tenant whose log has been chained from its first entry, dated (`at`
    and `order`) before that first entry. `auditIntegrity` counts it as a legacy entry and
    answers `intact: true`, and `auditLog` shows it to every auditor. Claim broken: "Someone who
    can write the database ... can ... insert ... an entry, but cannot make it verify"."""
    await write_versions(gateway, tenant_id)
    forged_at = datetime(2000, 1, 1, tzinfo=UTC)
    client = _writer(database_url)
    try:
        await client[TEST_DATABASE][AUDIT].insert_one({
            "_id": f"{tenant_id}:forged", "tenantId": tenant_id, "at": forged_at,
            "order": f"{int(forged_at.timestamp() * 1000):015d}:{tenant_id}:forged",
            "subject": "mallory", "roles": ["integrator"], "operation": "rollbackSettings",
            "outcome": "SAVED", "version": 2, "changes": [], "requestId": "forged-1",
        })  # fmt: skip
    finally:
        await client.close()

    verified = await gateway.execute(VERIFY_ALL, tenantId=tenant_id)
    shown = await gateway.execute(AUDIT_LOG, tenantId=tenant_id)

    assert any(e["subject"] == "mallory" for e in shown["auditLog"]["entries"])
    assert verified["auditIntegrity"]["complete"] is True
    assert verified["auditIntegrity"]["intact"] is False, verified["auditIntegrity"]


GENERATE_SIGNING_KEY = """
mutation GenerateSigningKey($tenantId: ID!) {
  generateOAuthSigningKey(tenantId: $tenantId) { __typename }
}
"""
READ_VERSION = """
query ReadVersion($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }
"""


async def test_a_signing_key_added_to_the_document_is_an_internal_error_not_the_history_entry(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Attack: a database writer appends a public key of its own to a tenant's OAuth signing
    keys in the settings document (no private half). The seal check meets a shape it does not
    expect and raises: every read of the tenant is `INTERNAL_SERVER_ERROR`, and the public
    `/tenants/{id}/.well-known/jwks.json` route Epic fetches fails with a 500, so the tenant's
    Epic integration stops. Claim broken: "A document edited in the database is not served ...
    the version's verified history entry is used instead" (with a warning), not an error."""
    # A database of its own: a malformed document must not reach other tests' gateways.
    config = directory_config(database_url, tmp_path)
    client = _writer(database_url)
    try:
        async for gateway in open_gateway(config):
            await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
            await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)  # v2
        public = {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "attacker", "alg": "RS384"}
        await client[config.database][SETTINGS].update_one(
            {"_id": tenant_id},
            {"$push": {"providers.EPIC.signingKeys": {"kid": "attacker", "publicJwk": public}}},
        )
        async for gateway in open_gateway(config):
            read = await gateway.post(READ_VERSION, tenantId=tenant_id)
    finally:
        await client.close()

    assert read == {"data": {"integrationSettings": {"version": 2}}}, read


async def test_one_tenants_directory_row_of_another_type_stops_every_gateway_from_starting(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """Attack: a database writer sets one tenant's directory row (`directory` in its settings
    document) to a string. The start-up refresh of the directory reads it as a mapping and
    raises, so no replica of the deployment starts (and a restarted one stays down): one field
    of one tenant takes every tenant offline. Claim broken: "A row that does not verify is left
    out of `tenants` (logged once on `ehr_gateway.security`)"; rows are "assessed again from
    checked settings at start", not trusted to be well-formed."""
    config = directory_config(database_url, tmp_path)
    other = f"{tenant_id}-other"
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
        await gateway.execute(SELECT_EPIC, tenantId=other)
    client = _writer(database_url)
    try:
        await client[config.database][SETTINGS].update_one(
            {"_id": tenant_id}, {"$set": {"directory": "not a row"}}
        )
    finally:
        await client.close()

    started: list[str] = []
    try:
        async for gateway in open_gateway(config):
            listed = await gateway.execute(TENANTS)
            started += [row["tenantId"] for row in listed["tenants"]["items"]]
    except AttributeError as failure:
        pytest.fail(f"the gateway did not start: {failure!r}")

    assert other in started


CORRUPTED_HISTORY = {
    "a link's hash of another type": {"chain.hash": 1},
    "settings of another type": {"settings": "not settings"},
}


@pytest.mark.parametrize("edit", list(CORRUPTED_HISTORY))
async def test_a_history_entry_retyped_by_a_database_writer_is_an_internal_error_in_audit_integrity(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    """Attack: a database writer changes the type of one field of a history entry (the link's
    hash to a number, or the settings to a string). `auditIntegrity` (and `settingsHistory`)
    answer `INTERNAL_SERVER_ERROR` instead of naming the broken link, so the tool an operator
    uses to find tampering reports nothing about where or what. Claim broken: `auditIntegrity`
    "checks every entry's link, content hash and MAC" and names the first broken link
    (`ALTERED`, `BAD_MAC`, ...)."""
    # A database of its own: a malformed entry must not reach other tests' gateways.
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)  # v2
        client = _writer(database_url)
        try:
            await client[config.database][HISTORY].update_one(
                {"tenantId": tenant_id, "version": 2}, {"$set": CORRUPTED_HISTORY[edit]}
            )
        finally:
            await client.close()

        verified = await gateway.post(VERIFY_ALL, tenantId=tenant_id)

    assert "errors" not in verified, verified["errors"]
    integrity = verified["data"]["auditIntegrity"]
    assert integrity["intact"] is False
    assert integrity["firstBrokenLink"]["version"] == 2, integrity
