"""One tenant's long history, seeded fast and exactly as the gateway stores it, for benchmarks.

``seed_versions`` adds versions to a tenant with the storage layer's own builders of a save's
documents (storage.repository.version_write: the history entry's chain link and MAC, the
settings document's seal and its sealed directory row; storage.audit.version_row and
chained_entry: the audit entry's sequence number and link), with the keys of the gateway that
will serve them (from its data directory), and inserts them in batches: about a millisecond of
this process's CPU a version, where a save through the repository costs about 15 ms. Versions
alternate the patient restriction's expression, so each differs from the one before and a
diff between two of them is a real one.

``check_served`` then asks a running gateway for what the benchmarks measure (the newest
history page, a page 95% back, a diff, the audit log's newest page, one auditIntegrity call)
and raises unless every answer is free of errors: a bench over versions the gateway refuses
measures refusals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, PatientRestriction, SettingsBlock
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.storage.audit import AUDIT, Head, chained_entry, version_row
from ehr_gateway.storage.chain import GENESIS
from ehr_gateway.storage.repository import (
    HISTORY,
    SETTINGS,
    SettingsRepository,
    version_write,
)
from ehr_gateway.storage.secrets import SecretBox
from ehr_gateway.storage.tenant_filter import tenant_is
from tests.documents import SETTINGS_HISTORY

BATCH = 2_000
EXPRESSIONS = ("age < 18", "age < 13")
ACTOR = "bench-seed"
CHANGED_PATHS = ["patientRestriction.expression"]
SETTINGS_DIFF = """
query SettingsDiff($tenantId: ID!, $from: Int!, $to: Int!) {
  settingsDiff(tenantId: $tenantId, fromVersion: $from, toVersion: $to) {
    __typename
    ... on SettingsDiff { changes { path before after } }
  }
}
"""
AUDIT_LOG = """
query AuditLog($tenantId: ID!, $before: String) {
  auditLog(tenantId: $tenantId, first: 20, before: $before) {
    entries { id at subject operation outcome version requestId }
    hasMore nextBefore
  }
}
"""
AUDIT_INTEGRITY = """
query AuditIntegrity($tenantId: ID!, $after: String) {
  auditIntegrity(tenantId: $tenantId, after: $after) {
    intact complete nextAfter checkedEntries
    firstBrokenLink { log version sequence reason }
    history { intact checkedEntries }
    auditLog { intact checkedEntries }
  }
}
"""


def _ms(moment: datetime) -> datetime:
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def seed_versions(
    url: str, database: str, data_dir: Path, tenant_id: str, versions: int
) -> int:
    """Add versions to ``tenant_id`` until it has ``versions`` (an Epic tenant with no settings
    if it has none yet); the version it ends at. The tenant's current document, newest history
    entry and audit head are read and verified first, and the new versions follow them. The
    settings document is replaced once, by the newest version's, after every entry is in (a
    document at a version means its entries are stored, as after a save). No gateway may write
    to the tenant meanwhile."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        keys = SecretBox.from_data_dir(data_dir).chain
        repository = SettingsRepository(client, database, keys)
        await repository.prepare()
        db = repository.database
        # A verified start: the document's seal, and history's newest entry when it is ahead.
        settings = await repository.get(tenant_id) or TenantSettings(
            tenant_id=tenant_id, provider=EhrProvider.EPIC
        )
        newest = await db[HISTORY].find_one(
            {"tenantId": tenant_is(tenant_id)}, sort=[("version", -1)]
        )
        assert newest is None or int(newest["version"]) == settings.version, (newest, settings)
        prev = GENESIS if newest is None else str(newest["chain"]["hash"])
        last_audit = await db[AUDIT].find_one(
            {"tenantId": tenant_is(tenant_id), "seq": {"$exists": True}}, sort=[("seq", -1)]
        )
        head = (
            Head(tenant_id, 0, GENESIS)
            if last_audit is None
            else Head(tenant_id, int(last_audit["seq"]), str(last_audit["chain"]["hash"]))
        )
        # Dated a millisecond apart, from a day back (never later than now): the repairs task
        # looks at versions written in the last minutes. Versions written since (a save the
        # bench timed) are later still: a seeded one always follows them.
        now = _ms(datetime.now(UTC))
        at = now - timedelta(days=1)
        if newest is not None:
            at = max(at, _ms(newest["changedAt"]) + timedelta(milliseconds=1))
        defaults = IdentifierDefaults()
        document: dict[str, Any] | None = None
        history_rows: list[dict[str, Any]] = []
        audit_rows: list[dict[str, Any]] = []
        for version in range(settings.version + 1, versions + 1):
            before = settings.patient_restriction.expression
            after = EXPRESSIONS[version % 2]
            changed = settings.model_copy(
                update={"patient_restriction": PatientRestriction(expression=after)}
            )
            audit = {
                "roles": ["integrator"],
                "operation": "updatePatientRestriction",
                "requestId": f"seed-{version}",
                "changes": [{"path": CHANGED_PATHS[0], "before": before, "after": after}],
            }
            write = version_write(
                changed, base_version=version - 1, prev=prev, at=min(at, now), actor=ACTOR,
                changed_blocks=[SettingsBlock.PATIENT_RESTRICTION], changed_paths=CHANGED_PATHS,
                keys=keys, identifier_defaults=defaults, audit=audit,
            )  # fmt: skip
            entry = chained_entry(version_row(write.entry), head, keys)
            history_rows.append(write.entry)
            audit_rows.append(entry)
            prev = write.entry["chain"]["hash"]
            head = Head(tenant_id, entry["seq"], entry["chain"]["hash"])
            settings, document = write.stored, write.document
            at += timedelta(milliseconds=1)
            if len(history_rows) == BATCH or version == versions:
                await db[HISTORY].insert_many(history_rows, ordered=False)
                await db[AUDIT].insert_many(audit_rows, ordered=False)
                history_rows, audit_rows = [], []
        if document is not None:
            await db[SETTINGS].replace_one(
                {"_id": tenant_id, "version": {"$lt": document["version"]}}, document, upsert=True
            )
        return settings.version
    finally:
        await client.close()


def _answer(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.post(
        "/graphql", json={"query": query, "variables": variables}
    ).json()
    if answer.get("errors") or not answer.get("data"):
        raise RuntimeError(f"seeded history not served: {answer}")
    return answer["data"]


def check_served(client: httpx.Client, tenant_id: str, versions: int) -> None:
    """Raise unless the gateway ``client`` talks to serves the seeded history without errors:
    the newest history page, a page 95% back, a diff between two versions, the audit log's
    newest page and one ``auditIntegrity`` call (intact so far)."""
    tenant = {"tenantId": tenant_id}
    newest = _answer(client, SETTINGS_HISTORY, tenant)["settingsHistory"]["versions"]
    if not newest or newest[0]["version"] != versions:
        raise RuntimeError(f"newest history page does not start at {versions}: {newest[:1]}")
    deep = max(2, int(versions * 0.05))
    older = _answer(client, SETTINGS_HISTORY, {**tenant, "before": deep})["settingsHistory"]
    if [row["version"] for row in older["versions"]][:1] != [deep - 1]:
        raise RuntimeError(f"history page before {deep}: {older['versions'][:1]}")
    diff = _answer(client, SETTINGS_DIFF, {**tenant, "from": versions - 1, "to": versions})
    changes = diff["settingsDiff"].get("changes")
    if not changes:
        raise RuntimeError(f"no diff between versions {versions - 1} and {versions}: {diff}")
    log = _answer(client, AUDIT_LOG, tenant)["auditLog"]["entries"]
    if not log or log[0]["version"] != versions:
        raise RuntimeError(f"newest audit page does not start at version {versions}: {log[:1]}")
    integrity = _answer(client, AUDIT_INTEGRITY, tenant)["auditIntegrity"]
    # A call verifies up to its bound: intact only once complete, but never a broken link.
    if integrity["firstBrokenLink"] is not None or integrity["checkedEntries"] == 0:
        raise RuntimeError(f"auditIntegrity finds the seeded history broken: {integrity}")
    if integrity["complete"] and not integrity["intact"]:
        raise RuntimeError(f"auditIntegrity: {integrity}")
