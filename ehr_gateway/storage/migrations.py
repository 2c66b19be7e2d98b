"""Bringing stored secrets up to today's form, once per database, when a gateway starts:

- a field that became a write-only secret (Ellkay's subscriber key and site service key) may
  still hold its value as plain text, in the current settings, in every history version and in
  the before/after of audit entries: it is sealed (settings, history) or shown as a secret is
  shown (audit), so no plaintext credential stays in the database;
- a fingerprint made before fingerprints were bound to their tenant and field (equal values
  showed equal fingerprints in every tenant) is made again, bound.

Every step is idempotent: replicas starting together, or a start interrupted half way, do the
same work again and change nothing more. The last step records that the database is done.

And, at every start, bringing the tenant directory's rows (storage.directory) up to date: a
settings document written before rows (or row seals) existed, or assessed on another basis
(other readiness rules, or identifier defaults set or unset since), is assessed again, from
its checked settings, and its row sealed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ehr_gateway.ehr.blocks import BLOCK_FIELDS, PROVIDER_BLOCKS
from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.ehr.secret import StoredSecret, field_binding
from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.directory import DIRECTORY, LISTED_AT, row_basis
from ehr_gateway.storage.repair import HistoryTampered
from ehr_gateway.storage.repository import HISTORY, SETTINGS, SettingsRepository
from ehr_gateway.storage.secrets import SecretBox, stored_secrets

logger = logging.getLogger("ehr_gateway.storage")

MIGRATIONS = "migrations"
SEALED_SECRETS = "sealed-secrets-1"


def _secret_fields() -> Iterator[tuple[EhrProvider, str, str, str]]:
    """(provider, stored block name, block value, field alias) of every secret field."""
    for provider, blocks in PROVIDER_BLOCKS.items():
        for block, model in blocks.items():
            for name, field in model.model_fields.items():
                if field.annotation is StoredSecret:
                    yield provider, BLOCK_FIELDS[block], block.value, field.alias or name


def _dump(secret: StoredSecret) -> dict[str, Any]:
    return secret.model_dump(mode="json", by_alias=True, exclude_computed_fields=True)


def _upgrade_settings(settings: dict[str, Any], box: SecretBox) -> int:
    """Seal plaintext secrets and bind old fingerprints in a settings document, in place."""
    tenant = settings.get("_id")
    providers = settings.get("providers")
    if not isinstance(tenant, str) or not isinstance(providers, dict):
        return 0  # no gateway wrote it: nothing of it is served, nothing to upgrade
    changed = 0
    for provider, stored_block, block, key in _secret_fields():
        fields = _nested(providers, provider.value, stored_block)
        if isinstance(fields.get(key), str):
            fields[key] = _dump(
                box.seal(fields[key], field_binding(tenant, provider.value, block, key))
            )
            changed += 1
    for secret, associated in stored_secrets(settings):
        try:
            stored = StoredSecret.model_validate(secret)
        except ValueError:  # not a secret a gateway sealed: never opened, nothing to bind
            continue
        bound = box.with_bound_fingerprint(stored, associated)
        if bound is not None:
            secret.update(_dump(bound))
            changed += 1
    return changed


def _nested(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The mapping at ``keys`` in ``document``; empty where a level is absent or of another
    shape (a database writer's edit must not stop a start)."""
    for key in keys:
        value = document.get(key)
        document = value if isinstance(value, dict) else {}
    return document


def _redact_changes(tenant: Any, changes: Any, box: SecretBox) -> int:
    """Show plaintext secrets in audit changes as a secret is shown, in place."""
    paths = {
        f"providers.{provider.value}.{stored_block}.{key}": (provider.value, block, key)
        for provider, stored_block, block, key in _secret_fields()
    }
    changed = 0
    if not isinstance(tenant, str) or not isinstance(changes, list):
        return 0
    for change in changes:
        where = paths.get(change.get("path", "")) if isinstance(change, dict) else None
        if where is None:
            continue
        for side in ("before", "after"):
            if isinstance(change.get(side), str):
                binding = field_binding(tenant, *where)
                fingerprint = box.fingerprint(change[side], binding)
                change[side] = {"isSet": True, "fingerprint": fingerprint, "updatedAt": None}
                changed += 1
    return changed


async def seal_stored_secrets(database: AsyncDatabase[dict[str, Any]], box: SecretBox) -> int:
    """Run the migration unless this database has had it; how many values it changed."""
    done = database[MIGRATIONS]
    if await done.find_one({"_id": SEALED_SECRETS}) is not None:
        return 0
    changed = 0
    # Entries that carry a chain link were written by a gateway that seals these keys and binds
    # fingerprints: they hold nothing to upgrade, and rewriting one would break its MAC.
    unchained = {"chain": {"$exists": False}}
    async for entry in database[HISTORY].find(unchained):
        settings = entry.get("settings")
        count = _upgrade_settings(settings, box) if isinstance(settings, dict) else 0
        count += _redact_changes(entry.get("tenantId"), _nested(entry, "audit").get("changes"), box)
        if count:
            await database[HISTORY].replace_one({"_id": entry["_id"]}, entry)
            changed += count
    async for row in database[AUDIT].find(unchained):
        count = _redact_changes(row.get("tenantId"), row.get("changes"), box)
        if count:
            await database[AUDIT].replace_one({"_id": row["_id"]}, row)
            changed += count
    async for first in database[SETTINGS].find({}):
        current: dict[str, Any] | None = first
        while current is not None:
            count = _upgrade_settings(current, box)
            if not count:
                break
            # Only over the version it read: a write in between is read and upgraded again.
            replaced = await database[SETTINGS].replace_one(
                {"_id": current["_id"], "version": current["version"]}, current
            )
            if replaced.matched_count:
                changed += count
                break
            current = await database[SETTINGS].find_one({"_id": current["_id"]})
    await done.update_one({"_id": SEALED_SECRETS}, {"$set": {"at": datetime.now(UTC)}}, upsert=True)
    return changed


async def refresh_directory(repository: SettingsRepository) -> int:
    """Assess again every tenant whose directory row is missing or was assessed on another
    basis than this gateway's; how many rows it wrote. Found through the basis index, so a start
    with nothing to do reads no settings document."""
    settings = repository.database[SETTINGS]
    basis = row_basis(repository.identifier_defaults)
    refreshed = 0
    async for first in settings.find({f"{DIRECTORY}.basis": {"$ne": basis}}):
        current: dict[str, Any] | None = first
        while current is not None:
            try:
                # Assessed again, not changed: it keeps its place in the changed-since order.
                # A row of another shape than a gateway writes is not trusted for that place:
                # listed as of the checked settings' change, as a row from before rows was.
                earlier = current.get(DIRECTORY)
                listed_at = earlier.get(LISTED_AT) if isinstance(earlier, dict) else None
                if not isinstance(listed_at, datetime):
                    listed_at = None
                row = await repository.checked_directory_row(current, listed_at=listed_at)
            except (ValueError, TypeError, HistoryTampered):  # no read can load it: unlisted
                logger.warning("tenant directory: settings of a tenant do not load; not listed")
                break
            # Only over the version it read: a write in between stored its own row (or, from a
            # gateway that keeps none, is read and assessed again).
            updated = await settings.update_one(
                {"_id": current["_id"], "version": current.get("version")},
                {"$set": {DIRECTORY: row}},
            )
            if updated.matched_count:
                refreshed += 1
                break
            current = await settings.find_one({"_id": current["_id"]})
            row_now = None if current is None else current.get(DIRECTORY)
            if isinstance(row_now, dict) and row_now.get("basis") == basis:
                break
    return refreshed
