"""auditIntegrity: a dashboard asks whether a tenant's history and audit log are as the gateway
wrote them. The attack: a local pymongo client (the embedded database asks no credentials)
rewrites an audit entry's subject, which auditLog then serves; auditIntegrity names that entry
as the first broken link."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.repository import HISTORY
from tests.conftest import TEST_DATABASE, Gateway, open_gateway
from tests.documents import SELECT_EPIC
from tests.own_database import own_database

UPDATE_EHR = """
mutation UpdateEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
AUDIT_INTEGRITY = """
query Integrity($tenantId: ID!) {
  auditIntegrity(tenantId: $tenantId) {
    tenantId intact checkedEntries legacyEntries checkedAt
    firstBrokenLink { log version sequence entryId at reason message }
    history { log intact checkedEntries legacyEntries head headHash firstBrokenLink { version } }
    auditLog { log intact checkedEntries legacyEntries head headHash firstBrokenLink { sequence } }
  }
}
"""
AUDIT_LOG = """
query Audit($tenantId: ID!) { auditLog(tenantId: $tenantId) { entries { id subject version } } }
"""


@pytest.fixture
async def own_config(database_url: str, tmp_path: Path) -> AsyncIterator[GatewayConfig]:
    """A database of its own for a test that leaves a database writer's entries behind."""
    async with own_database(database_url, tmp_path) as config:
        yield config


@pytest.fixture
def intruder() -> Iterator[Any]:
    """A factory of the local process's own pymongo client on the gateway's database."""
    clients: list[MongoClient[dict[str, Any]]] = []

    def open_on(gateway: Gateway) -> Any:
        assert gateway.config.mongodb_url is not None
        client: MongoClient[dict[str, Any]] = MongoClient(gateway.config.mongodb_url)
        clients.append(client)
        return client[TEST_DATABASE]

    yield open_on
    for client in clients:
        client.close()


async def write_three_versions(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    for password in ("first-pa55", "second-pa55"):
        credentials = {"soapUsername": "soap-user", "soapPassword": password}
        await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})


async def set_settings_version(
    database_url: str, database: str, tenant_id: str, version: object
) -> None:
    """Overwrite the settings document's version as a database writer other than the gateway
    could."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await client[database]["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$set": {"version": version}}
        )
    finally:
        await client.close()


async def integrity(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gateway.execute(AUDIT_INTEGRITY, tenantId=tenant_id))[
        "auditIntegrity"
    ]
    return result


async def test_logs_as_written_are_intact(gateway: Gateway, tenant_id: str) -> None:
    await write_three_versions(gateway, tenant_id)
    result = await integrity(gateway, tenant_id)
    assert (result["intact"], result["checkedEntries"], result["legacyEntries"]) == (True, 6, 0)
    assert result["firstBrokenLink"] is None
    assert (result["history"]["head"], result["auditLog"]["head"]) == (3, 3)
    assert len(result["history"]["headHash"]) == 64


async def test_a_forged_audit_subject_is_named(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    await write_three_versions(gateway, tenant_id)
    intruder(gateway)[AUDIT].update_one(
        {"tenantId": tenant_id, "seq": 2}, {"$set": {"subject": "someone-else"}}
    )
    served = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]["entries"]
    assert "someone-else" in [entry["subject"] for entry in served]  # the forgery is served...
    result = await integrity(gateway, tenant_id)  # ...and shown to be one
    assert result["intact"] is False
    broken = result["firstBrokenLink"]
    assert {key: broken[key] for key in ("log", "version", "sequence", "entryId", "reason")} == {
        "log": "AUDIT", "version": None, "sequence": 2,
        "entryId": f"{tenant_id}:v000000000002", "reason": "ALTERED",
    }  # fmt: skip
    assert broken["at"] and broken["message"] == "its content was changed after it was written"
    assert result["auditLog"]["checkedEntries"] == 1 and result["history"]["intact"] is True


async def test_a_deleted_history_entry_is_named(
    gateway: Gateway, tenant_id: str, intruder: Any
) -> None:
    await write_three_versions(gateway, tenant_id)
    intruder(gateway)[HISTORY].delete_one({"tenantId": tenant_id, "version": 2})
    result = await integrity(gateway, tenant_id)
    broken = result["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 3, "MISSING")
    assert broken["message"] == "version 2 is missing before it"


async def test_it_needs_audit_read(gateway: Gateway, tenant_id: str) -> None:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["viewer", "editor"])
    body = await editor.post(AUDIT_INTEGRITY, tenantId=tenant_id)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "permission": "audit:read"}


# A settings document's version as a database writer may retype it.
RETYPED_DOCUMENT_VERSIONS: dict[str, Any] = {
    "text": "x",
    "a list": [5],
    "an object": {"version": 5},
}


@pytest.mark.parametrize("retyped", list(RETYPED_DOCUMENT_VERSIONS))
async def test_a_settings_version_of_another_type_is_no_internal_error(
    database_url: str, own_config: GatewayConfig, tmp_path: Path, tenant_id: str, retyped: str
) -> None:
    """The walk compares the settings document's version with the end of history (a document
    ahead of it shows entries removed from the end): one of a type no gateway writes is no
    such sign, and the logs, as written, are intact. A database of its own: the document
    stays behind."""
    config = own_config
    async for gateway in open_gateway(config):
        await write_three_versions(gateway, tenant_id)
        await set_settings_version(
            database_url, config.database, tenant_id, RETYPED_DOCUMENT_VERSIONS[retyped]
        )

        answer = await gateway.post(AUDIT_INTEGRITY, tenantId=tenant_id)

    assert "errors" not in answer, answer["errors"]
    result = answer["data"]["auditIntegrity"]
    assert (result["intact"], result["history"]["head"]) == (True, 3), result


async def test_a_settings_version_past_graphql_int_shows_history_missing_from_the_end(
    database_url: str, own_config: GatewayConfig, tmp_path: Path, tenant_id: str
) -> None:
    """A number, however large, is compared: the first version history lacks is named."""
    config = own_config
    async for gateway in open_gateway(config):
        await write_three_versions(gateway, tenant_id)
        await set_settings_version(database_url, config.database, tenant_id, 2**31)

        result = await integrity(gateway, tenant_id)

    broken = result["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 4, "MISSING")
    assert broken["message"] == "the settings are at version 2147483648, history ends at version 3"
