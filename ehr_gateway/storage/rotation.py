"""Key rotation: re-encrypt every stored secret (current settings and history) under the current
key, so the previous keys can be retired.

With EHRGW_ENCRYPTION_KEY: set the new key there and the old one in
EHRGW_PREVIOUS_ENCRYPTION_KEYS on every replica, run `ehr-gateway rotate-secrets`, then drop the
previous keys. With the key file in the data dir (the embedded default): stop the gateway and run
`ehr-gateway rotate-secrets`; it adds a new key, re-encrypts, and removes the old key from the
file.

History and audit entries are MACed with a key derived from the encryption key (storage.chain),
so rotation also re-MACs each entry under the new key, once its MAC has verified under the key
that made it: a forged entry is never given a fresh MAC. Only MACs change: the links between
entries are hashes, so entries that running gateways write meanwhile still follow theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from pymongo.errors import PyMongoError

from ehr_gateway.ehr.secret import StoredSecret
from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.chain import (
    AUDIT_LOG,
    HISTORY_LOG,
    document_fault,
    document_seal,
    entry_fault,
    remac,
)
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.directory import DIRECTORY, ROW_SEAL, row_fault, seal_row
from ehr_gateway.storage.embedded import EmbeddedDatabaseError, EmbeddedMongo
from ehr_gateway.storage.repository import HISTORY, SEAL, SETTINGS, sealed_content
from ehr_gateway.storage.secrets import (
    KEY_FILE,
    SecretBox,
    SecretBoxError,
    located_secrets,
    new_key,
)


class RotationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A stored secret rotation could not open (sealed with a key that is not configured, or
    altered): left as it was."""

    tenant_id: str
    path: str
    version: int | None  # the history version it is in; None for the current settings
    reason: str  # names a key id at most, never the secret


@dataclass(frozen=True, slots=True)
class Rotated:
    key_id: str
    documents: int
    secrets: int
    remaced: int = 0  # history and audit entries MACed again under the new key
    unverified: int = 0  # entries whose MAC did not verify: left as they were
    unreadable: tuple[Unreadable, ...] = ()


@dataclass(frozen=True, slots=True)
class _Resealed:
    count: int
    unreadable: list[Unreadable]


def _reseal(settings: dict[str, Any], box: SecretBox, version: int | None = None) -> _Resealed:
    count = 0
    unreadable: list[Unreadable] = []
    for path, secret, associated in located_secrets(settings):
        if secret.get("keyId") == box.key_id:
            continue
        # One secret no configured key opens must not keep every other tenant's under a key
        # being retired: it is reported and the walk carries on.
        try:
            old = StoredSecret.model_validate(secret)
            fresh = box.seal(box.open(old, associated), associated, keep=old)
        except SecretBoxError as error:
            reason = str(error)
        except InvalidTag:
            reason = "it does not open with its key (altered, or moved from another place)"
        except ValueError:
            reason = "it is not a well-formed stored secret"
        else:
            secret.update(
                fresh.model_dump(mode="json", by_alias=True, exclude_computed_fields=True)
            )
            count += 1
            continue
        unreadable.append(Unreadable(str(settings["_id"]), path, version, reason))
    return _Resealed(count, unreadable)


async def _rotate_database(url: str, database: str, box: SecretBox) -> Rotated:
    client = connect(url)
    db = client[database]
    documents = secrets = remaced = unverified = 0
    unreadable: list[Unreadable] = []
    keys = box.chain
    try:
        async for entry in db[HISTORY].find({}):
            chained = isinstance(entry.get("chain"), dict)
            # Checked before re-sealing: the MAC covers the sealed secrets as they are now.
            sound = chained and entry_fault(HISTORY_LOG, entry, keys) is None
            if chained and not sound:
                unverified += 1
            resealed = _reseal(entry["settings"], box, entry["settings"].get("version"))
            unreadable.extend(resealed.unreadable)
            count = resealed.count
            stale = sound and (count or entry["chain"].get("keyId") != keys.key_id)
            if stale:
                remac(HISTORY_LOG, entry, keys)
                remaced += 1
            if count or stale:
                await db[HISTORY].replace_one({"_id": entry["_id"]}, entry)
            if count:
                documents, secrets = documents + 1, secrets + count
        async for audited in db[AUDIT].find({"chain": {"$exists": True}}):
            if audited["chain"].get("keyId") == keys.key_id:
                continue
            if entry_fault(AUDIT_LOG, audited, keys) is not None:
                unverified += 1
                continue
            remac(AUDIT_LOG, audited, keys)
            await db[AUDIT].replace_one({"_id": audited["_id"]}, audited)
            remaced += 1
        async for first in db[SETTINGS].find({}):
            row: dict[str, Any] | None = first
            while row is not None:
                seal = row.get(SEAL)
                # Checked before re-sealing, as a history entry's MAC is: a document whose seal
                # does not verify keeps it, and a load then takes its history entry instead.
                sound = isinstance(seal, dict) and (
                    document_fault(sealed_content(row), seal, keys) is None
                )
                resealed = _reseal(row, box)
                count = resealed.count
                stale = sound and (count or (seal or {}).get("keyId") != keys.key_id)
                if stale:
                    row[SEAL] = document_seal(sealed_content(row), keys)
                # The directory row's seal likewise (it covers no secret: only the key changes).
                listed = row_fault(row, keys) is None
                if listed and row[DIRECTORY][ROW_SEAL].get("keyId") != keys.key_id:
                    seal_row(row, keys)
                    stale = True
                if not (count or stale):
                    unreadable.extend(resealed.unreadable)
                    break
                # Only over the version it read: a write in between is re-read and re-sealed.
                replaced = await db[SETTINGS].replace_one(
                    {"_id": row["_id"], "version": row["version"]}, row
                )
                if replaced.matched_count:
                    unreadable.extend(resealed.unreadable)
                    if count:
                        documents, secrets = documents + 1, secrets + count
                    break
                row = await db[SETTINGS].find_one({"_id": row["_id"]})
    except (PyMongoError, SecretBoxError, ValueError) as error:
        raise RotationError(f"rotation stopped: {error}") from None
    finally:
        await client.close()
    return Rotated(box.key_id, documents, secrets, remaced, unverified, tuple(unreadable))


async def rotate(
    *,
    mongodb_url: str | None,
    database: str,
    data_dir: Path,
    encryption_key: str | None,
    previous_keys: str | None,
) -> Rotated:
    """Re-encrypt under ``encryption_key`` (or a new key in the data dir's key file); the
    embedded database is started when no ``mongodb_url`` is given. A secret no configured key
    opens is left as it is and listed in ``unreadable``; the key file then keeps its previous
    keys."""
    key_file: Path | None = None
    try:
        if encryption_key:
            box = SecretBox.from_base64(encryption_key, previous_keys)
        else:
            key_file = data_dir / KEY_FILE
            if not key_file.exists():
                raise RotationError(f"no key file {KEY_FILE} in {data_dir}: nothing to do")
            key_file.write_text(new_key() + "\n" + key_file.read_text())
            box = SecretBox.from_data_dir(data_dir)
    except SecretBoxError as error:
        raise RotationError(str(error)) from None
    embedded = None
    url = mongodb_url
    if url is None:
        embedded = EmbeddedMongo(data_dir)
        try:
            url = embedded.start()
        except EmbeddedDatabaseError as error:
            raise RotationError(str(error)) from None
    try:
        rotated = await _rotate_database(url, database, box)
    finally:
        if embedded is not None:
            embedded.stop()
    if key_file is not None and not rotated.unreadable:  # every secret needs only the new key
        key_file.write_text(key_file.read_text().split()[0] + "\n")
    return rotated
