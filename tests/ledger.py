"""The ledger a fault test checks once the fault is over: what the database holds for a tenant,
held against what the gateway acknowledged.

- history has versions 1..N, no gap, no duplicate;
- the settings document is at version N, with history N's settings;
- the audit log has one SAVED entry per version 1..N;
- every acknowledged write is in history, at the version it was acknowledged with, with its value;
- no value was stored twice (each attempt writes a value of its own; a retry of an attempt
  writes the same value again, under the same idempotency key).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

HISTORY = "tenant_settings_history"
SETTINGS = "tenant_settings"
AUDIT = "audit_log"


def ellkay_waitlisting(settings: Mapping[str, Any]) -> Any:
    """The value the fault tests write: the Ellkay waitlisting status name."""
    return (
        settings.get("providers", {}).get("ELLKAY", {}).get("ehr", {}).get("waitlistingStatusName")
    )


@dataclass(frozen=True)
class Ledger:
    versions: list[int]
    values: dict[int, Any]  # version -> the value written in it
    document_version: int | None
    audited_versions: list[int]


def read_ledger(
    database_url: str,
    database: str,
    tenant_id: str,
    value_of: Callable[[Mapping[str, Any]], Any] = ellkay_waitlisting,
) -> Ledger:
    client: MongoClient[dict[str, Any]] = MongoClient(database_url, serverSelectionTimeoutMS=10_000)
    try:
        db = client[database]
        rows = list(db[HISTORY].find({"tenantId": tenant_id}, sort=[("version", 1)]))
        document = db[SETTINGS].find_one({"_id": tenant_id})
        audited = [
            int(row["version"])
            for row in db[AUDIT].find(
                {"tenantId": tenant_id, "outcome": "SAVED"}, projection={"version": 1}
            )
        ]
    finally:
        client.close()
    return Ledger(
        versions=[int(row["version"]) for row in rows],
        values={int(row["version"]): value_of(row["settings"]) for row in rows},
        document_version=None if document is None else int(document["version"]),
        audited_versions=sorted(audited),
    )


def check_ledger(
    database_url: str,
    database: str,
    tenant_id: str,
    acknowledged: Mapping[int, Any],
    value_of: Callable[[Mapping[str, Any]], Any] = ellkay_waitlisting,
) -> Ledger:
    """Assert the ledger of ``tenant_id`` holds every ``acknowledged`` write (version -> value)
    and is whole; returns it for further checks."""
    ledger = read_ledger(database_url, database, tenant_id, value_of)
    count = len(ledger.versions)
    assert ledger.versions == list(range(1, count + 1)), f"history versions: {ledger.versions}"
    assert ledger.document_version == (count or None), (
        f"document at {ledger.document_version}, history at {count}"
    )
    assert ledger.audited_versions == ledger.versions, (
        f"audited {ledger.audited_versions}, history {ledger.versions}"
    )
    for version, value in acknowledged.items():
        assert ledger.values.get(version) == value, (
            f"acknowledged version {version} ({value!r}) is {ledger.values.get(version)!r}"
        )
    repeated = [
        value for value, times in Counter(ledger.values.values()).items()
        if times > 1 and value is not None
    ]  # fmt: skip
    assert not repeated, f"stored more than once: {repeated}"
    return ledger
