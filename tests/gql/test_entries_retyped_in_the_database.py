"""History and audit entries whose fields a database writer gave types no gateway stores (a
link that is a string, a sequence number that is text, a date that is not a date): each is
reported as tampering, where tampering is reported (`HISTORY_TAMPERED`, or the broken link
`auditIntegrity` names), never an internal error; and the tenant's next write is not stopped by
an audit entry it cannot follow. Each test has a database of its own, so that no other test's
gateway meets the malformed entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import Gateway, open_gateway
from tests.documents import READ_VERSION, SELECT_EPIC, SETTINGS_HISTORY
from tests.gql.test_tenants_query import directory_config
from tests.own_database import own_database

SET_FHIR_PREFIX = """
mutation SetFhirPrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""
AUDIT_LOG = """
query AuditLog($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 50) {
    entries { subject operation version at changes { path } }
  }
}
"""
VERIFY = """
query Verify($tenantId: ID!) {
  auditIntegrity(tenantId: $tenantId) {
    intact complete
    firstBrokenLink { log version sequence entryId reason }
  }
}
"""
HISTORY = "tenant_settings_history"
AUDIT = "audit_log"
# Past GraphQL's Int (a 32-bit signed integer) either way, which BSON holds as an int64: an entry
# number no gateway writes, which would fail the Int field that shows it.
PAST_GRAPHQL_INT = 2**31
BELOW_GRAPHQL_INT = -(2**31) - 1


async def _edit(gateway: Gateway, collection: str, query: dict[str, Any], change: Any) -> None:
    """What a database writer does with its own client (the embedded database asks none)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(gateway.config.mongodb_url)
    try:
        await client[gateway.config.database][collection].update_one(query, {"$set": change})
    finally:
        await client.close()


async def _two_versions(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R4")  # v2


SHOWN_FIELDS = {
    "a date that is text": {"at": "yesterday"},
    "changes that are text": {"changes": "none"},
    "a version past GraphQL's Int": {"version": PAST_GRAPHQL_INT},
    "a version below GraphQL's Int": {"version": BELOW_GRAPHQL_INT},
}


@pytest.mark.parametrize("edit", list(SHOWN_FIELDS))
async def test_an_audit_entry_retyped_is_answered_as_tampered_in_the_audit_log(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    """Attack (database writer): give an audit entry a date, changes or version of a type no
    gateway writes, among them a version BSON stores as int64 but GraphQL's Int cannot carry
    (2**31): a type check that looks at the Python type only let it reach `entries.version`,
    and auditLog answered INTERNAL_SERVER_ERROR. auditLog answers HISTORY_TAMPERED for a page
    holding such an entry instead of showing it, and auditIntegrity names it."""
    async for gateway in open_gateway(directory_config(database_url, tmp_path)):
        await _two_versions(gateway, tenant_id)
        await _edit(gateway, AUDIT, {"tenantId": tenant_id, "seq": 2}, SHOWN_FIELDS[edit])

        shown = await gateway.post(AUDIT_LOG, tenantId=tenant_id)
        verified = await gateway.execute(VERIFY, tenantId=tenant_id)

    assert shown["data"] is None, shown
    (error,) = shown["errors"]
    assert error["extensions"] == {"code": "HISTORY_TAMPERED"}, error
    assert tenant_id in error["message"] and "auditIntegrity" in error["message"]
    broken = verified["auditIntegrity"]["firstBrokenLink"]
    assert (broken["log"], broken["sequence"], broken["reason"]) == ("AUDIT", 2, "ALTERED")


AUDIT_LINKS = {
    "a link that is text": {"chain": "x"},
    "a sequence number that is text": {"seq": "2"},
    "a sequence number past GraphQL's Int": {"seq": PAST_GRAPHQL_INT},
    "a sequence number below GraphQL's Int": {"seq": BELOW_GRAPHQL_INT},
}


@pytest.mark.parametrize(
    "sequence", [PAST_GRAPHQL_INT, BELOW_GRAPHQL_INT], ids=["past GraphQL's Int", "below it"]
)
async def test_the_newest_audit_entry_numbered_past_graphql_int_is_named_in_audit_integrity(
    database_url: str, tmp_path: Path, tenant_id: str, sequence: int
) -> None:
    """Attack (database writer): set the newest audit entry's sequence number to 2**31, which
    BSON stores as int64 but GraphQL's Int cannot carry. A type check that looks at the Python
    type only took it for a well-formed entry, and auditIntegrity answered
    INTERNAL_SERVER_ERROR putting it in firstBrokenLink's sequence. auditIntegrity names the
    entry, read by a gateway that has nothing of it cached. A database of its own: the entry
    stays behind."""
    async with own_database(database_url, tmp_path) as config:
        async for gateway in open_gateway(config):
            await _two_versions(gateway, tenant_id)
            await _edit(gateway, AUDIT, {"tenantId": tenant_id, "seq": 2}, {"seq": sequence})
        async for replica in open_gateway(config):  # nothing cached: reads what is stored
            verified = await replica.post(VERIFY, tenantId=tenant_id)

    assert "errors" not in verified, verified["errors"]
    integrity = verified["data"]["auditIntegrity"]
    assert (integrity["intact"], integrity["complete"]) == (False, True)
    broken = integrity["firstBrokenLink"]
    newest = f"{tenant_id}:v{2:012d}"
    assert (broken["log"], broken["entryId"], broken["reason"]) == ("AUDIT", newest, "ALTERED")


@pytest.mark.parametrize("edit", list(AUDIT_LINKS))
async def test_the_next_write_after_an_audit_entry_retyped_is_stored_and_the_entry_named(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    """The newest audit entry is the one the next write's entry follows: one of another type
    no longer stops the write (the version is stored and answered), and the walk names it."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await _two_versions(gateway, tenant_id)
    async for replica in open_gateway(config):  # knows no head: reads the retyped entry
        await _edit(replica, AUDIT, {"tenantId": tenant_id, "seq": 2}, AUDIT_LINKS[edit])

        written = await replica.post(SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R5")
        verified = await replica.execute(VERIFY, tenantId=tenant_id)

    assert "errors" not in written, written["errors"]
    assert written["data"]["updateFhirSettings"]["settings"] == {"version": 3}
    integrity = verified["auditIntegrity"]
    assert (integrity["intact"], integrity["complete"]) == (False, True)
    broken = integrity["firstBrokenLink"]
    assert (broken["log"], broken["entryId"]) == ("AUDIT", f"{tenant_id}:v{2:012d}"), broken


STRIPPED_LINKS = {
    "a link that is text": {"$set": {"chain": "x"}},
    "a link removed": {"$unset": {"chain": ""}},
}


@pytest.mark.parametrize("edit", list(STRIPPED_LINKS))
async def test_the_next_write_after_a_history_link_stripped_or_retyped_is_refused(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    """The newest history entry is the one the next write's entry follows. Chaining after an
    entry whose link was stripped (or retyped: no link either) would sign whatever that entry
    now says into the history that follows, so the write is refused as tampered, nothing is
    stored, and the walk names the entry UNCHAINED."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await _two_versions(gateway, tenant_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = client[config.database][HISTORY]
        await history.update_one({"tenantId": tenant_id, "version": 2}, STRIPPED_LINKS[edit])
        async for replica in open_gateway(config):  # knows no head: reads the stripped entry
            written = await replica.post(SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R5")
            verified = await replica.execute(VERIFY, tenantId=tenant_id)
        versions = await history.distinct("version", {"tenantId": tenant_id})
    finally:
        await client.close()

    codes = [error["extensions"]["code"] for error in written.get("errors", [])]
    assert codes == ["HISTORY_TAMPERED"], written
    assert sorted(versions) == [1, 2]
    broken = verified["auditIntegrity"]["firstBrokenLink"]
    assert (broken["log"], broken["version"], broken["reason"]) == ("HISTORY", 2, "UNCHAINED")


RETYPED_HISTORY = {
    "a link's hash that is a number": {"chain.hash": 1},
    "settings that are text": {"settings": "not settings"},
}


@pytest.mark.parametrize("edit", list(RETYPED_HISTORY))
async def test_a_history_entry_retyped_is_named_as_the_broken_link_in_audit_integrity(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    """auditIntegrity is what an operator asks where the tampering is: a history entry with a
    field of another type is named as the first broken link, not an internal error."""
    async for gateway in open_gateway(directory_config(database_url, tmp_path)):
        await _two_versions(gateway, tenant_id)
        await _edit(gateway, HISTORY, {"tenantId": tenant_id, "version": 2}, RETYPED_HISTORY[edit])

        verified = await gateway.post(VERIFY, tenantId=tenant_id)

    assert "errors" not in verified, verified["errors"]
    integrity = verified["data"]["auditIntegrity"]
    assert integrity["intact"] is False
    assert integrity["firstBrokenLink"]["version"] == 2, integrity


# A history entry's version as a database writer may retype it.
RETYPED_VERSIONS: dict[str, Any] = {
    "a version that is text": "two",
    "a version that is null": None,
    "a version that is a list": [2],
    "a version past GraphQL's Int": PAST_GRAPHQL_INT,
    "a version below GraphQL's Int": BELOW_GRAPHQL_INT,
}


@pytest.mark.parametrize("retyped", list(RETYPED_VERSIONS))
async def test_a_history_entry_whose_version_is_retyped_answers_history_tampered(
    database_url: str, tmp_path: Path, tenant_id: str, retyped: str
) -> None:
    """A database writer gives version 2's history entry a ``version`` of another type (text,
    null, a list, a number GraphQL's Int cannot carry). settingsHistory answers
    HISTORY_TAMPERED, and neither it, the tenant's reads and writes nor auditIntegrity, which
    names the entry, answer an internal error."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await _two_versions(gateway, tenant_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await client[config.database][HISTORY].update_one(
            {"tenantId": tenant_id, "version": 2}, {"$set": {"version": RETYPED_VERSIONS[retyped]}}
        )
        async for replica in open_gateway(config):  # nothing cached: reads what is stored
            answers = {
                "settingsHistory": await replica.post(SETTINGS_HISTORY, tenantId=tenant_id),
                "integrationSettings": await replica.post(READ_VERSION, tenantId=tenant_id),
                "updateFhirSettings": await replica.post(
                    SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R5"
                ),
                "auditIntegrity": await replica.post(VERIFY, tenantId=tenant_id),
            }
    finally:
        await client.close()

    codes = {
        field: [error["extensions"]["code"] for error in answer.get("errors", [])]
        for field, answer in answers.items()
    }
    assert not any("INTERNAL_SERVER_ERROR" in found for found in codes.values()), codes
    assert codes["settingsHistory"] == ["HISTORY_TAMPERED"], codes
