"""Tenant settings documents and their history on MongoDB.

A write is a compare-and-set on the tenant's version. The history entry, unique on (tenant,
version), is the commit point: of all writers that read version n, exactly one can insert
history entry n + 1, and only that one then moves the settings document from n to n + 1. So no
concurrent writer loses another's update and history has no gaps, on any server that enforces
unique indexes. On a replica set or sharded cluster both steps also run in one transaction. The
embedded server is not given transactions: it runs concurrent transactions on one SQLite
connection, where they interfere. If a process dies between the two steps, or a step after the
commit point fails (the disk is full, the database went away), the gateway rolls the orphaned
history entry forward by itself (storage.repair); a writer that meets one first does so too.

Each history entry is chained to the tenant's previous version (storage.chain). The writer knows
that entry's hash from the write that stored it, when this process made that write; otherwise it
reads it (one small read). The compare-and-set above also keeps the chain from forking: only one
entry n + 1 is ever stored, and it names entry n.

The settings document is the view of its version's history entry that reads and writes start
from, so it is sealed too (storage.chain.document_seal) and checked whenever it is loaded: one
that does not verify is replaced by its history entry, if that verifies, and refused if not.
Otherwise a value a database writer edited into it would be served, and signed into the next
version by whatever write came next.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

from ehr_gateway.ehr.blocks import STORED_CONTEXT, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.storage.audit import AuditLog, Head, SequenceTaken
from ehr_gateway.storage.chain import (
    GENESIS,
    HISTORY_LOG,
    Fault,
    document_fault,
    document_seal,
    entry_fault,
    history_link,
    same_settings,
    settings_parts,
)
from ehr_gateway.storage.client import is_storage_full
from ehr_gateway.storage.directory import (
    BY_CHANGE,
    DIRECTORY,
    DirectoryPage,
    DirectoryQuery,
    directory_row,
    listing_time,
    read_page,
    row_fault,
    seal_row,
    stamp,
)
from ehr_gateway.storage.directory import create_indexes as create_directory_indexes
from ehr_gateway.storage.group_commit import GroupCommit, per_operation
from ehr_gateway.storage.locks import WriteTurns
from ehr_gateway.storage.repair import (
    APPEND_AUDIT,
    GRACE_S,
    INSERT_HISTORY,
    REPLACE_DOCUMENT,
    ROLL_FORWARD,
    HistoryTampered,
    Repairs,
    StorageFull,
    WriteFailures,
    log_failed_write,
    security_logger,
)
from ehr_gateway.storage.secrets import ChainKeys
from ehr_gateway.storage.stored_numbers import is_stored_number
from ehr_gateway.storage.tenant_filter import TEXT_TENANTS, first_text_tenant, tenant_is

SETTINGS = "tenant_settings"
HISTORY = "tenant_settings_history"
# The field of a settings document that holds its seal (storage.chain.document_seal).
SEAL = "seal"
# How long a change stream poll may wait for a change before answering empty.
WATCH_AWAIT_MS = 1000
# Where the gateway checks that the database takes writes again after refusing them for space.
WRITE_PROBE = "gateway_write_probe"
# A probe writes about what a settings write does.
_PROBE_BYTES = 8192
# History entries this process stored that the change feed has not yet asked for. The feed reads
# each version's entry back as its event arrives; one read per write, in turn, was more than the
# feed could keep up with under a steady stream of writes. Beyond this many (the feed is down or
# far behind) the oldest are read from the database again.
_UNANNOUNCED_MAX = 256
# Tenants whose newest version and its chain hash this process remembers.
_HEADS_MAX = 10_000
# Forged history entries (tenant, version) this process has logged, so a tenant whose writers keep
# meeting one logs it once.
_TAMPERED_MAX = 10_000
# Transactions that failed only because of another transaction (not another version) tried
# again before the write gives up.
_TRANSACTION_ATTEMPTS = 8
# Why a history entry is refused besides its own faults (storage.chain.Fault): it carries no
# chain link (from before the chain, or stripped of it), or the version before it is missing.
UNCHAINED = "UNCHAINED"
MISSING = "MISSING"
# Why a settings document is not served besides its seal's faults: a part of it has a shape no
# gateway writes, which its seal cannot be checked over.
MALFORMED = "MALFORMED"


def gateway_id_path(provider: EhrProvider) -> str:
    """Where a provider's external gateway id is stored in a settings document."""
    return f"providers.{provider.value}.externalGateway.externalGatewayId"


def _nested(document: Any, keys: list[str]) -> Any:
    """The value at ``keys`` in nested documents; None where any level is absent or null."""
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


# The field of a history entry that holds its version's settings document.
_ENTRY_SETTINGS = "settings"


def gateway_id_queries(gateway_id: str) -> list[dict[str, str]]:
    """The queries that find the tenant with this external gateway id, one per provider: each
    answered from its index. Not one `$or` of them: the embedded server reads every document for
    an `$or`, indexed or not."""
    return [{gateway_id_path(provider): gateway_id} for provider in EhrProvider]


def _holds(settings: TenantSettings, gateway_id: str) -> bool:
    """Whether one of the providers' external gateways in ``settings`` (checked: an id edited
    into a document is not in them) has this id."""
    for blocks in settings.providers.values():
        gateway = blocks.external_gateway
        if gateway is not None and gateway.external_gateway_id == gateway_id:
            return True
    return False


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One version of a tenant's settings, as it was written."""

    tenant_id: str
    version: int
    changed_at: datetime
    actor: str
    changed_blocks: tuple[SettingsBlock, ...]
    changed_paths: tuple[str, ...]
    settings: TenantSettings


@dataclass(frozen=True, slots=True)
class Conflict:
    """The write was refused: the tenant is at ``current_version``, not the version it read."""

    current_version: int


def history_entry(row: dict[str, Any], settings: TenantSettings | None = None) -> HistoryEntry:
    """A stored history document as a HistoryEntry; ``settings``: its settings as read back
    already."""
    return HistoryEntry(
        tenant_id=row["tenantId"],
        version=row["version"],
        changed_at=row["changedAt"],
        actor=row["actor"],
        changed_blocks=tuple(SettingsBlock(block) for block in row["changedBlocks"]),
        changed_paths=tuple(row["changedPaths"]),
        settings=_settings(row["settings"]) if settings is None else settings,
    )


def _document(settings: TenantSettings) -> dict[str, Any]:
    data = settings.model_dump(
        mode="json", by_alias=True, exclude={"tenant_id"}, exclude_computed_fields=True
    )
    data["_id"] = settings.tenant_id
    data["updatedAt"] = settings.updated_at  # stored as a BSON date
    return data


def sealed_content(document: Mapping[str, Any]) -> dict[str, Any]:
    """A settings document as its seal covers it: without its directory row (derived from the
    settings, and assessed again on its own) and the seal itself."""
    return {key: value for key, value in document.items() if key not in (DIRECTORY, SEAL)}


def _stored_version(document: Mapping[str, Any]) -> int:
    """A settings document's or history entry's version; 0 (a version no gateway writes) when
    a database writer stored something else there (text, null, a list), so that a document's
    history entry is not found either, and an entry is named as a broken link
    (``_malformed``) rather than failing whatever reads it."""
    version = document.get("version")
    return version if is_stored_number(version) else 0


def _entry_tenant(row: Mapping[str, Any]) -> str:
    """A history entry's tenant as text, for naming an entry that does not verify: a database
    writer's entry may hold anything there, or nothing."""
    return str(row.get("tenantId"))


def _malformed(row: Mapping[str, Any]) -> bool:
    """Whether a history entry's tenant or version has a type no gateway writes: a database
    writer's, which range queries on the version may still find (a list holding a number in
    range; text sorting after every number)."""
    return not _stored_version(row) or not isinstance(row.get("tenantId"), str)


def _settings(document: dict[str, Any]) -> TenantSettings:
    data = dict(document)
    data["tenantId"] = data.pop("_id")
    data.pop(DIRECTORY, None)  # derived from the settings, not part of them
    data.pop(SEAL, None)
    return TenantSettings.model_validate(data, context=STORED_CONTEXT)


@dataclass(frozen=True, slots=True)
class VersionWrite:
    """What a save of one version stores, before any of it is sent: ``entry``, the history
    entry (chained); ``document``, the settings document with its seal and its directory row
    (stamped and sealed); ``as_read``, the settings as a read of that document returns them;
    ``stored``, the settings as stored (version, time and writer set)."""

    entry: dict[str, Any]
    document: dict[str, Any]
    as_read: TenantSettings
    stored: TenantSettings


def version_write(
    settings: TenantSettings,
    *,
    base_version: int,
    prev: str,
    at: datetime,
    actor: str,
    changed_blocks: list[SettingsBlock],
    changed_paths: list[str],
    keys: ChainKeys,
    identifier_defaults: IdentifierDefaults,
    audit: Mapping[str, Any] | None = None,
    idempotency: Mapping[str, Any] | None = None,
    listed_at: datetime | None = None,
) -> VersionWrite:
    """The documents ``SettingsRepository.save`` stores for ``settings`` as version
    ``base_version + 1`` at ``at`` (milliseconds, UTC), following the history entry whose hash
    is ``prev``, listed at ``listed_at`` (by default ``at``). No database round trip: save
    builds its write with it, and so can anything that must store versions exactly as save
    would (a benchmark seeding a long history) without drifting from it."""
    stored = settings.model_copy(
        update={"version": base_version + 1, "updated_at": at, "updated_by": actor}
    )
    document = _document(stored)
    entry: dict[str, Any] = {
        "tenantId": stored.tenant_id,
        "version": stored.version,
        "changedAt": at,
        "actor": actor,
        "changedBlocks": [block.value for block in changed_blocks],
        "changedPaths": changed_paths,
        "settings": document,
        "audit": dict(audit or {}),
    }
    # As a read of the document returns it, so that what the writer is answered, what the
    # settings cache keeps, and the readiness stored with it are what a read would give.
    as_read = _settings(document)
    as_read.adopt_derived(settings)
    # The current document also carries the version's directory row (its readiness and sort
    # keys), in the same replace; history keeps the settings alone. The history entry's hash
    # and the document's seal cover the same settings.
    parts = settings_parts(document)
    listed = {
        **document,
        DIRECTORY: directory_row(as_read, identifier_defaults, listed_at or at),
        SEAL: document_seal(document, keys, parts),
    }
    seal_row(listed, keys)
    if idempotency is not None:
        entry["idempotency"] = dict(idempotency)
    entry["chain"] = history_link(entry, prev, keys, parts)
    return VersionWrite(entry, listed, as_read, stored)


class SettingsRepository:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str,
        chain: ChainKeys,
        identifier_defaults: IdentifierDefaults | None = None,
    ) -> None:
        self._client = client
        self._chain = chain
        # Readiness depends on them: each stored version's directory row is assessed with them.
        self.identifier_defaults = identifier_defaults or IdentifierDefaults()
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._db: AsyncDatabase[dict[str, Any]] = client[database]
        self._settings = self._db[SETTINGS]
        self._history = self._db[HISTORY]
        self._transactions = False
        self.write_turns = WriteTurns()
        self.audit = AuditLog(self._db, chain)
        self._unannounced: OrderedDict[Any, tuple[dict[str, Any], TenantSettings]] = OrderedDict()
        self._tampered: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.tampered_entries = 0  # forged history entries met (each counted once)
        self.edited_documents = 0  # settings documents loaded that their seal did not cover
        # Directory rows left out of listings (their seal does not verify), each logged once.
        self._unlisted: OrderedDict[tuple[str, int], None] = OrderedDict()
        # Tenants whose newest history entry was served ahead of their document (_newest_entry):
        # its audit entry may be missing too, so the tenant's next write here rolls it forward
        # before building on it, and the audit log keeps every version in order.
        self._ahead: OrderedDict[str, int] = OrderedDict()
        self.edited_rows = 0
        # Outside transactions, the history entries (and then the documents) of writes to
        # different tenants that are ready while the previous command is in flight go to the
        # database as one command: each entry or document is still inserted or replaced on its
        # own, and each writer gets its own outcome.
        self._history_inserts = GroupCommit(self._insert_history)
        self._document_replaces = GroupCommit(self._replace_documents)
        # Writes refused for space (for readiness), and the task that finishes writes that
        # stopped after their commit point (started and stopped with the app).
        self.write_failures = WriteFailures()
        self.repairs = Repairs(
            self._roll_forward_in_turn,
            self._document_versions,
            self._recent_versions,
            self._probe_write,
            self.write_failures,
        )

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self._db

    @property
    def chain(self) -> ChainKeys:
        """The keys history and audit entries are MACed with."""
        return self._chain

    async def prepare(self) -> None:
        """Create indexes and learn whether the deployment isolates transactions. Idempotent."""
        await self._history.create_index(
            [("tenantId", ASCENDING), ("version", DESCENDING)],
            unique=True,
            name="tenant_version_unique",
        )
        await self._history.create_index([("changedAt", ASCENDING)], name="changed_at")
        # One stored version per idempotency key and tenant, even when two replicas race with the
        # same key: the second insert fails as a duplicate and its writer answers the first.
        await self._history.create_index(
            [("tenantId", ASCENDING), ("idempotency.key", ASCENDING)],
            unique=True,
            partialFilterExpression={"idempotency.key": {"$exists": True}},
            name="tenant_idempotency_key_unique",
        )
        # The base path URL (unauthenticated) and resolveExternalGateway look a tenant up by an
        # external gateway id anyone can make up: without these, each lookup reads every tenant.
        for provider in EhrProvider:
            path = gateway_id_path(provider)
            await self._settings.create_index(
                [(path, ASCENDING)],
                partialFilterExpression={path: {"$exists": True}},
                name=f"{provider.value.lower()}_external_gateway_id",
            )
        # An id's owner is found from its verified history too (find_by_gateway_id). On the id
        # alone, not (id, tenant): the embedded server plans a compound index on a nested
        # path only beside a single one, and one index entry per version written is enough.
        for provider in EhrProvider:
            path = f"{_ENTRY_SETTINGS}.{gateway_id_path(provider)}"
            await self._history.create_index(
                [(path, ASCENDING)],
                partialFilterExpression={path: {"$exists": True}},
                name=f"history_{provider.value.lower()}_external_gateway_id",
            )
        await create_directory_indexes(self._settings)
        await self.audit.prepare()
        hello = await self._client.admin.command("hello")
        self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"

    async def get(self, tenant_id: str) -> TenantSettings | None:
        document = await self._settings.find_one({"_id": tenant_id})
        return None if document is None else await self._checked(document)

    async def _checked(self, document: dict[str, Any]) -> TenantSettings:
        """A loaded settings document's settings (``_sealed``), unless history holds a newer
        version: then that version's entry, once it verifies (``_newest_entry``)."""
        return await self._newest_entry(await self._sealed(document))

    async def _newest_entry(self, settings: TenantSettings) -> TenantSettings:
        """``settings`` (a checked document's), or the tenant's newest history entry if that
        is newer. A seal shows that a gateway wrote the document, not that it is the newest
        version: a database writer can put back an older sealed document (a URL or secret
        since replaced), which must not be served nor become the next write's base. One small
        read on the (tenant, version) index per load; the newest entry itself only when there
        is a newer one. That is also the case for a write whose document has
        not landed yet: served without a warning within the repair task's grace period, and
        rolled forward after it if the document is still behind (storage.repair). A newer
        entry that does not verify raises HistoryTampered, as the tenant's writes do."""
        tenant_id = settings.tenant_id
        # Whether any newer entry exists: a range on the index, no sort, nothing but its id.
        newer = {"tenantId": tenant_is(tenant_id), "version": {"$gt": settings.version}}
        if await self._history.find_one(newer, projection={"_id": 1}) is None:
            return settings
        row = await self._history.find_one(newer, sort=[("version", DESCENDING)])
        if row is None:  # removed since: the next load sees what is there
            return settings
        version = _stored_version(row)
        fault = await self._fault(row)
        if fault is not None:
            # Not a gateway's entry (logged once), or a gateway's entry edited since: which
            # version is current cannot be told, as a sealed document shows only that a
            # gateway wrote it once. The document may be an older one put back, with the entry
            # that followed it edited so as not to verify; or an entry of the next version may
            # have been inserted. Either way the tenant's reads are refused as its writes are.
            raise self._tampered_entry(tenant_id, version, fault, newest=True)
        changed_at = row["changedAt"]
        if changed_at.tzinfo is None:
            changed_at = changed_at.replace(tzinfo=UTC)
        if datetime.now(UTC) - changed_at > timedelta(seconds=GRACE_S):
            security_logger.warning(
                "tenant %s: settings document at version %s is older than its newest history "
                "entry, version %s (put back, or its write did not finish); the history entry "
                "is used",
                tenant_id, settings.version, version,
            )  # fmt: skip
            self.edited_documents += 1
        self.repairs.announced(tenant_id, version)
        self._ahead[tenant_id] = version
        self._ahead.move_to_end(tenant_id)
        if len(self._ahead) > _TAMPERED_MAX:
            self._ahead.popitem(last=False)
        return _settings(row["settings"])

    async def _sealed(self, document: dict[str, Any]) -> TenantSettings:
        """A loaded settings document's settings, once its seal verifies. Else those of its
        version's history entry, if that verifies (the document was edited: logged, never its
        values); else HistoryTampered. A document from before seals is compared with that entry
        (one more read, once per load: the settings cache keeps the result); its next write
        seals it."""
        content = sealed_content(document)
        seal = document.get(SEAL)
        fault = "UNSEALED"
        if isinstance(seal, dict):
            try:
                fault = document_fault(content, seal, self._chain) or ""
            except (TypeError, ValueError, AttributeError, KeyError):
                # A value of a type no gateway stores (a database writer's edit) that the
                # hash cannot even read: edited like any other, so its history entry is used.
                fault = MALFORMED
            if not fault:
                return _settings(document)
        tenant_id, version = str(document["_id"]), _stored_version(document)
        if fault == Fault.UNKNOWN_KEY:
            # Most likely a replica started without a previous key during a rotation: say so,
            # as nothing it cannot check is served (a writer can name any key id).
            security_logger.error(
                "tenant %s: settings document version %s is sealed with key %s, which is not "
                "configured; its history entry is checked instead",
                tenant_id, version, seal.get("keyId") if isinstance(seal, dict) else None,
            )  # fmt: skip
        row = await self._history.find_one({"tenantId": tenant_is(tenant_id), "version": version})
        if row is None:
            raise self._tampered_entry(tenant_id, version, f"DOCUMENT_{fault}", newest=True)
        await self._verify(row)
        if fault != "UNSEALED" or not same_settings(content, row["settings"]):
            security_logger.warning(
                "tenant %s: settings document at version %s does not match its history entry "
                "(%s); the history entry is used",
                tenant_id, version, fault,
            )  # fmt: skip
            self.edited_documents += 1
        return _settings(row["settings"])

    async def save(
        self,
        settings: TenantSettings,
        *,
        base_version: int,
        actor: str,
        changed_blocks: list[SettingsBlock],
        changed_paths: list[str],
        audit: Mapping[str, Any] | None = None,
        idempotency: Mapping[str, Any] | None = None,
    ) -> TenantSettings | Conflict:
        """Store ``settings`` as version ``base_version + 1`` if the tenant is still at
        ``base_version``. Returns the stored settings or a Conflict. ``audit`` (roles,
        operation, requestId, changes) goes into the history entry and the audit log.
        ``idempotency`` (``key``: the caller's key, hashed; ``request``: what it asked) goes into
        the history entry, so the key is stored in the same insert as the version: a Conflict
        may then mean that the key is already stored (``idempotent_entry``)."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold ms
        write = version_write(
            settings,
            base_version=base_version,
            prev=await self._chain_head(settings.tenant_id, base_version),
            at=now,
            actor=actor,
            changed_blocks=changed_blocks,
            changed_paths=changed_paths,
            keys=self._chain,
            identifier_defaults=self.identifier_defaults,
            audit=audit,
            idempotency=idempotency,
        )
        entry, listed, as_read, stored = write.entry, write.document, write.as_read, write.stored
        if self.repairs.is_orphaned(stored.tenant_id) or stored.tenant_id in self._ahead:
            # This process's last write to the tenant stopped after its commit point, or this
            # write's base is a history entry read ahead of its document: finish that write
            # first, so the audit log keeps the versions in order.
            self._ahead.pop(stored.tenant_id, None)
            try:
                self.repairs.repaired(
                    stored.tenant_id, await self._roll_forward(stored.tenant_id, orphan=True)
                )
            except PyMongoError as error:
                raise self._refused(ROLL_FORWARD, entry, error, stored=False) from None
        for _ in range(_TRANSACTION_ATTEMPTS):
            # Stamped as the write is sent, not when it began: see storage.directory.
            stamp(listed[DIRECTORY], stored.tenant_id, listing_time())
            seal_row(listed, self._chain)
            try:
                audit_head = await self._write(entry, listed, as_read)
            except SequenceTaken:  # another writer appended to the audit log: try again
                continue
            except PyMongoError as error:
                # Another writer took this version: its history entry exists (DuplicateKeyError),
                # or, inside a transaction, the server saw two writes collide (a transient write
                # conflict), which may have been over the audit log rather than the version.
                if isinstance(error, DuplicateKeyError) or error.has_error_label(
                    "TransientTransactionError"
                ):
                    current = await self._roll_forward(stored.tenant_id)
                    if self._transactions and current == base_version:
                        continue
                    return Conflict(current)
                raise
            if self._transactions:  # committed now that the transaction has ended
                self._remember_head(entry)
                if audit_head is not None:
                    self.audit.remember(audit_head)
            break
        else:
            return Conflict(await self._roll_forward(stored.tenant_id))
        return as_read

    async def _chain_head(self, tenant_id: str, base_version: int) -> str:
        """The hash of the history entry of ``base_version``, which the new entry follows.

        A base entry that is missing, or has no link (stripped, or a link of another type: a
        database writer's), refuses the write: chaining after it would sign whatever the
        stripped entry now says into the history that follows (the chain begins only at
        version 1, or at what ``chain-legacy-history`` adopted)."""
        if base_version == 0:
            return GENESIS
        known = self._heads.get(tenant_id)
        if known is not None and known[0] == base_version:
            return known[1]
        row = await self._history.find_one(
            {"tenantId": tenant_is(tenant_id), "version": base_version}, projection={"chain": 1}
        )
        if row is None:
            raise self._tampered_entry(tenant_id, base_version, MISSING, newest=True)
        chain = row.get("chain")
        if not isinstance(chain, dict) or not isinstance(chain.get("hash"), str):
            raise self._tampered_entry(tenant_id, base_version, UNCHAINED, newest=True)
        return str(chain["hash"])

    def _remember_head(self, entry: Mapping[str, Any]) -> None:
        tenant_id, chain = entry["tenantId"], entry.get("chain")
        if not isinstance(chain, dict):
            self._heads.pop(tenant_id, None)
            return
        self._heads[tenant_id] = (int(entry["version"]), str(chain["hash"]))
        self._heads.move_to_end(tenant_id)
        if len(self._heads) > _HEADS_MAX:
            self._heads.popitem(last=False)

    async def _write(
        self, entry: dict[str, Any], document: dict[str, Any], as_read: TenantSettings
    ) -> Head | None:
        """The write's steps, in a transaction where the deployment has them; returns the audit
        log's new head to remember once the transaction commits.

        A step that fails before the commit point (the history insert) fails the write; one that
        fails after it does not: the version is stored, the change feed announces it, and
        ``repairs`` rolls the document and audit entry forward. The writer is answered that it
        was saved, which it was."""
        step = [INSERT_HISTORY]
        # Kept for the feed before the insert is sent: its event can arrive before the insert's
        # answer, and the feed would then read the entry back from the database, as though
        # another process had written it.
        self._expect_announcement(entry, as_read)
        if not self._transactions:
            try:
                await self._commit_without_transaction(entry, document, as_read, step)
            except BaseException:
                if step[0] == INSERT_HISTORY:  # not stored: no event comes for it
                    self._unannounced.pop(entry["_id"], None)
                raise
            return None
        try:
            async with (
                self._client.start_session() as session,
                await session.start_transaction(),
            ):
                head = await self._commit(entry, document, as_read, session, step)
        except BaseException as error:
            # Whatever this transaction appended is not stored after all.
            self._unannounced.pop(entry["_id"], None)
            self.audit.forget(entry["tenantId"])
            if (
                isinstance(error, PyMongoError)
                and not isinstance(error, (DuplicateKeyError, SequenceTaken))
                and not error.has_error_label("TransientTransactionError")
            ):
                unknown = error.has_error_label("UnknownTransactionCommitResult")
                raise self._refused(
                    step[0], entry, error, stored=None if unknown else False
                ) from None
            raise
        self.write_failures.stored()
        return head

    async def _commit_without_transaction(
        self,
        entry: dict[str, Any],
        document: dict[str, Any],
        as_read: TenantSettings,
        step: list[str],
    ) -> None:
        try:
            await self._commit(entry, document, as_read, None, step)
        except DuplicateKeyError:
            raise  # another writer took the version: the caller answers a conflict
        except PyMongoError as error:
            if step[0] == INSERT_HISTORY:
                # A write error is the server refusing this very entry: it is not stored.
                refused = isinstance(error, WriteError)
                raise self._refused(
                    step[0], entry, error, stored=False if refused else None
                ) from None
            log_failed_write(step[0], entry["tenantId"], entry["version"], error)
            if is_storage_full(error):
                self.write_failures.refused()
            self.repairs.orphaned(entry["tenantId"], entry["version"])
            return
        self.write_failures.stored()

    def _refused(
        self, step: str, entry: Mapping[str, Any], error: PyMongoError, *, stored: bool | None
    ) -> PyMongoError:
        """What to raise for a write that failed at ``step``, logged in one line: StorageFull
        when the database has no space, else the error itself."""
        tenant_id, version = entry["tenantId"], int(entry["version"])
        log_failed_write(step, tenant_id, version, error)
        if not is_storage_full(error):
            return error
        self.write_failures.refused()
        return StorageFull(step, tenant_id, version, stored, type(error).__name__)

    async def _commit(
        self,
        entry: dict[str, Any],
        document: dict[str, Any],
        as_read: TenantSettings,
        session: AsyncClientSession | None,
        step: list[str],
    ) -> Head | None:
        """The write's steps in order; ``step`` holds the one under way."""
        if session is None:
            await self._history_inserts.run(entry)
            self._remember_head(entry)  # committed: the tenant's next version follows it
        else:
            await self._history.insert_one(entry, session=session)
        # The version is now taken and the write committed; the audit entry and then the
        # document follow, in that order: a document at a version means its audit entry is
        # stored, so a writer that meets an entry ahead of the document (this process died in
        # between) rolls both forward. It may already have done so for this entry.
        step[0] = APPEND_AUDIT
        audit_head = await self.audit.record_version(entry, session)
        step[0] = REPLACE_DOCUMENT
        replace = {"_id": document["_id"], "version": {"$lt": document["version"]}}
        if session is None:
            await self._document_replaces.run((replace, document))
            return None
        with suppress(DuplicateKeyError):
            await self._settings.replace_one(replace, document, upsert=True, session=session)
        return audit_head

    def _expect_announcement(self, entry: dict[str, Any], as_read: TenantSettings) -> None:
        """Keep the entry this process is storing for the feed's announcement of it, with its
        settings as read back (``as_read``, what the writer and the settings cache have): the
        feed publishes the same object, whose blocks are validated already, rather than reading
        the entry back and validating its settings again."""
        # The driver would name it as it sends the insert; named here, the entry is known by it
        # before then.
        entry_id = entry.setdefault("_id", ObjectId())
        self._unannounced[entry_id] = (entry, as_read)
        if len(self._unannounced) > _UNANNOUNCED_MAX:
            self._unannounced.popitem(last=False)

    async def _insert_history(self, entries: list[dict[str, Any]]) -> list[PyMongoError | None]:
        try:
            await self._history.insert_many(entries, ordered=False)
        except BulkWriteError as error:
            return per_operation(error, len(entries))
        return [None] * len(entries)

    async def _replace_documents(
        self, replaces: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> list[PyMongoError | None]:
        try:
            await self._settings.bulk_write(
                [ReplaceOne(query, document, upsert=True) for query, document in replaces],
                ordered=False,
            )
        except BulkWriteError as error:
            # A duplicate key: the document is already at this version or past it (a writer
            # rolled it forward, or the upsert raced another that created it).
            return [
                None if isinstance(failed, DuplicateKeyError) else failed
                for failed in per_operation(error, len(replaces))
            ]
        return [None] * len(replaces)

    async def _roll_forward(self, tenant_id: str, *, orphan: bool = False) -> int:
        """Bring the document up to the newest history entry (if a writer died between its two
        steps) and return the tenant's current version. ``orphan``: the version's writer gave
        up on its replace, which may still land late with a stale listing time; one already
        at the version is listed again, now (storage.directory)."""
        latest = await self._history.find_one(
            {"tenantId": tenant_is(tenant_id)}, sort=[("version", -1)]
        )
        if latest is None:
            return 0
        await self._verify(latest)
        version = _stored_version(latest)
        self._remember_head(latest)
        await self.audit.record_version(latest)
        # Listed when it becomes visible, not when its writer began (storage.directory).
        document = self.with_directory_row(latest["settings"], listed_at=listing_time())
        document[SEAL] = document_seal(latest["settings"], self._chain)
        try:
            await self._settings.replace_one(
                {"_id": tenant_id, "version": {"$lt": version}}, document, upsert=True
            )
        except DuplicateKeyError:
            if orphan:
                await self._relist(document)
        return version

    async def _relist(self, document: dict[str, Any]) -> None:
        """Replace the document, already at its version, to list it at the listing time
        ``document`` carries, unless a later listing landed first (a relisting held up in turn
        must not move the row back). A whole replace, not a ``$set`` of the listing: the
        embedded server stores a date set that way as text."""
        await self._settings.replace_one(
            {
                "_id": document["_id"],
                "version": document["version"],
                f"{DIRECTORY}.{BY_CHANGE}": {"$lt": document[DIRECTORY][BY_CHANGE]},
            },
            document,
        )

    def with_directory_row(
        self, document: Mapping[str, Any], *, listed_at: datetime | None = None
    ) -> dict[str, Any]:
        """A stored settings document (as history keeps it) with its directory row, listed at
        ``listed_at`` (by default when the settings were written)."""
        row = directory_row(_settings(dict(document)), self.identifier_defaults, listed_at)
        listed = {**document, DIRECTORY: row}
        seal_row(listed, self._chain)
        return listed

    async def checked_directory_row(
        self, document: dict[str, Any], *, listed_at: datetime | None
    ) -> dict[str, Any]:
        """A stored settings document's directory row assessed again (storage.migrations),
        from its checked settings (``_sealed``), so that no edited value is assessed and sealed
        into a row: a document edited in its listed fields keeps a row that does not verify
        for it, and is not listed until its next write."""
        settings = await self._sealed(document)
        row: dict[str, Any] = self.with_directory_row(_document(settings), listed_at=listed_at)[
            DIRECTORY
        ]
        return row

    async def directory_page(self, query: DirectoryQuery) -> DirectoryPage:
        """A page of the tenant directory (storage.directory): rows whose seal does not verify
        are left out, and logged once (tenant and version, never values)."""
        return await read_page(self._settings, query, self._listed)

    def _listed(self, document: Mapping[str, Any]) -> bool:
        fault = row_fault(document, self._chain)
        if fault is None:
            return True
        # The version as logged and remembered: a number (a database writer's list or object
        # could not be a key of the remembered rows).
        tenant_id, version = str(document["_id"]), _stored_version(document)
        if (tenant_id, version) not in self._unlisted:
            self._unlisted[(tenant_id, version)] = None
            if len(self._unlisted) > _TAMPERED_MAX:
                self._unlisted.popitem(last=False)
            self.edited_rows += 1
            security_logger.warning(
                "tenant %s: directory row of settings version %s does not verify (%s); not "
                "listed until the tenant's next write",
                tenant_id, version, fault,
            )  # fmt: skip
        return False

    async def _verify(self, row: Mapping[str, Any], *, newest: bool = True) -> None:
        """Raise HistoryTampered unless ``row`` is a history entry a gateway holding the
        deployment's key wrote: its content gives its hash, its MAC verifies, and it names the
        hash of the version before it, which is there. Anyone who can write to the database can
        insert an entry; only a gateway can chain one, so nothing unchained is applied, served,
        published or audited. Entries from before the chain are no exception: what is absent
        from the database (a link, a version) cannot tell them from entries stripped of their
        chain, so an operator adopts them once (``ehr-gateway chain-legacy-history``)."""
        fault = await self._fault(row)
        if fault is not None:
            raise self._tampered_entry(
                _entry_tenant(row), _stored_version(row), fault, newest=newest
            )

    async def _fault(
        self, row: Mapping[str, Any], known: Mapping[int, str] | None = None
    ) -> str | None:
        """Why ``row`` does not verify (see ``_verify``); None when it does."""
        if _malformed(row):
            return MALFORMED
        chain = row.get("chain")
        if not isinstance(chain, dict):
            return UNCHAINED
        fault = entry_fault(HISTORY_LOG, row, self._chain)
        if fault is not None:
            return fault
        expected = await self._link_before(row["tenantId"], row["version"], known)
        if expected is None:
            return MISSING
        return None if chain.get("prev") == expected else "BROKEN_LINK"

    async def _link_before(
        self, tenant_id: str, version: int, known: Mapping[int, str] | None = None
    ) -> str | None:
        """The ``prev`` an entry of ``version`` must name: GENESIS for the first version, else
        the hash of the version before it; None when that version is missing, or has no link
        (no entry follows an unchained one: adoption chains a tenant's older history from
        version 1). ``known``: hashes by version verified already (a page read in order)."""
        if version <= 1:
            return GENESIS
        if known is not None and version - 1 in known:
            return known[version - 1]
        head = self._heads.get(tenant_id)
        if head is not None and head[0] == version - 1:
            return head[1]
        row = await self._history.find_one(
            {"tenantId": tenant_is(tenant_id), "version": version - 1}, projection={"chain": 1}
        )
        if row is None:
            return None
        chain = row.get("chain")
        return chain.get("hash") if isinstance(chain, dict) else None

    def _tampered_entry(
        self, tenant_id: str, version: int, fault: str, *, newest: bool
    ) -> HistoryTampered:
        """The error for a history entry that does not verify, logged and counted once."""
        if (tenant_id, version) not in self._tampered:
            self._tampered[(tenant_id, version)] = None
            if len(self._tampered) > _TAMPERED_MAX:
                self._tampered.popitem(last=False)
            self.tampered_entries += 1
            security_logger.warning(
                "tenant %s: history version %s does not verify (%s); not applied, not audited%s",
                tenant_id, version, fault, ", writes to the tenant refused" if newest else "",
            )  # fmt: skip
        return HistoryTampered(tenant_id, version, fault, newest=newest)

    async def idempotent_entry(
        self, tenant_id: str, key: str, retention: timedelta
    ) -> tuple[HistoryEntry, dict[str, Any]] | None:
        """The version stored with idempotency key ``key`` (hashed) within ``retention``, and
        its ``idempotency`` field. A key older than that is forgotten here (removed from its
        entry), so the index lets it name a new write."""
        row = await self._history.find_one(
            {"tenantId": tenant_is(tenant_id), "idempotency.key": key}
        )
        if row is None:
            return None
        cutoff = datetime.now(UTC) - retention
        changed_at = row["changedAt"]
        if changed_at.tzinfo is None:
            changed_at = changed_at.replace(tzinfo=UTC)
        if changed_at < cutoff:
            await self._history.update_one(
                {"_id": row["_id"], "idempotency.key": key}, {"$unset": {"idempotency": ""}}
            )
            return None
        # The answer is a stored version: if its writer never finished it (the database went
        # away after the history insert), the document and audit entry are brought up to it.
        # It must be one a gateway wrote: a forged entry carrying the key is not an answer.
        await self._verify(row)
        await self._roll_forward(tenant_id)
        return history_entry(row), dict(row["idempotency"])

    async def _roll_forward_in_turn(self, tenant_id: str) -> int:
        """``_roll_forward`` for the repairs task: in turn with this process's writers to the
        tenant, so a writer and the repair never interleave their steps."""
        async with self.write_turns.hold(tenant_id):
            return await self._roll_forward(tenant_id, orphan=True)

    async def _document_versions(self, tenant_ids: list[str]) -> dict[str, int]:
        """The version of each tenant's settings document (absent: none)."""
        cursor = self._settings.find({"_id": {"$in": tenant_ids}}, projection={"version": 1})
        return {row["_id"]: _stored_version(row) async for row in cursor}

    async def _recent_versions(self, seconds: float, limit: int) -> dict[str, int]:
        """The newest version of each tenant among the ``limit`` newest versions written in the
        last ``seconds``."""
        since = datetime.fromtimestamp(time.time() - seconds, UTC)
        # The window is applied here rather than in the query: with a filter on changedAt the
        # embedded server reads every entry that matches before it stops at the limit (5 s for
        # 100,000 recent versions, a start during a bulk import, with the database held the
        # while); sorted alone, it reads the newest ``limit`` by the index.
        cursor = self._history.find(
            {},
            projection={"tenantId": 1, "version": 1, "changedAt": 1},
            sort=[("changedAt", DESCENDING)],
            limit=limit,
        )
        newest: dict[str, int] = {}
        async for row in cursor:
            changed_at = row.get("changedAt")
            if not isinstance(changed_at, datetime):
                continue  # not a date: no gateway wrote it
            if changed_at.tzinfo is None:
                changed_at = changed_at.replace(tzinfo=UTC)
            if changed_at < since:
                break  # older than the window, as is everything after it
            tenant_id, version = row.get("tenantId"), _stored_version(row)
            if not isinstance(tenant_id, str) or not version:  # no gateway wrote it
                continue
            newest[tenant_id] = max(version, newest.get(tenant_id, 0))
        return newest

    async def _probe_write(self) -> None:
        """A write of about a settings write's size, removed again: it succeeds once the
        database takes writes again."""
        probe_id = uuid.uuid4().hex
        await self._db[WRITE_PROBE].insert_one(
            {"_id": probe_id, "at": datetime.now(UTC), "pad": "0" * _PROBE_BYTES}
        )
        await self._db[WRITE_PROBE].delete_one({"_id": probe_id})

    async def history(
        self, tenant_id: str, *, before: int | None, limit: int
    ) -> tuple[list[HistoryEntry], bool]:
        """Versions newest first, older than ``before`` when given; and whether more remain."""
        query: dict[str, Any] = {"tenantId": tenant_is(tenant_id)}
        if before is not None:
            query["version"] = {"$lt": before}
        cursor = self._history.find(query, sort=[("version", -1)], limit=limit + 1)
        rows = await cursor.to_list()
        await self._verify_served(rows[:limit])
        entries = [history_entry(row) for row in rows[:limit]]
        return entries, len(rows) > limit

    async def version(self, tenant_id: str, version: int) -> HistoryEntry | None:
        """``version`` as stored, once it verifies (HistoryTampered if not)."""
        row = await self._history.find_one({"tenantId": tenant_is(tenant_id), "version": version})
        if row is None:
            return None
        await self._verify_served([row])
        return history_entry(row)

    async def _verify_served(self, rows: list[dict[str, Any]]) -> None:
        """Raise HistoryTampered for the first of ``rows`` (one tenant's) that does not verify
        as ``_verify`` checks it: a version shown to a caller (history, a diff) is one a
        gateway wrote, as one rolled back to is. Checked oldest first, so each verified hash
        vouches for the next version's link: a page costs one read of the version before it."""
        known: dict[int, str] = {}
        for row in sorted(rows, key=_stored_version):
            fault = await self._fault(row, known)
            if fault is not None:
                raise self._tampered_entry(
                    _entry_tenant(row), _stored_version(row), fault, newest=False
                )
            known[row["version"]] = str(row["chain"]["hash"])

    async def committed_settings(self, tenant_id: str, version: int) -> TenantSettings | None:
        """The settings of ``version`` from its history entry, for a read that knows the version
        is committed before its document shows it; None if there is no such entry or it does
        not verify (never served: the document's settings are, and its writers are refused)."""
        row = await self._history.find_one({"tenantId": tenant_is(tenant_id), "version": version})
        if row is None:
            return None
        try:
            await self._verify(row)
        except HistoryTampered:
            return None
        return _settings(row["settings"])

    async def verified_version(self, tenant_id: str, version: int) -> HistoryEntry | None:
        """``version`` for a write to apply again (a rollback): raises HistoryTampered unless a
        gateway holding the key wrote it, as a roll-forward checks the entry it applies. The
        write that follows chains what it applies, so a forged entry let through here would
        come out of it as a properly signed version."""
        row = await self._history.find_one({"tenantId": tenant_is(tenant_id), "version": version})
        if row is None:
            return None
        await self._verify(row, newest=False)
        return history_entry(row)

    async def versions_after(
        self, tenant_id: str, after: int, *, before: int | None = None, limit: int = 0
    ) -> list[HistoryEntry]:
        """The tenant's versions after ``after`` (and before ``before``), oldest first; at most
        ``limit`` of them read (0: all). Served to subscribers: an entry that does not verify
        is left out (logged once)."""
        entries, _ = await self.versions_page(tenant_id, after, before=before, limit=limit)
        return entries

    async def versions_page(
        self, tenant_id: str, after: int, *, before: int | None = None, limit: int = 0
    ) -> tuple[list[HistoryEntry], int | None]:
        """``versions_after``, and the last version read (None: none is left in the range). A
        page whose every entry was left out is empty, though versions may follow it: the
        reader goes on after the last one read, not after the last one served."""
        bounds: dict[str, int] = {"$gt": after}
        if before is not None:
            bounds["$lt"] = before
        cursor = self._history.find(
            {"tenantId": tenant_is(tenant_id), "version": bounds},
            sort=[("version", ASCENDING)],
            limit=limit,
        )
        rows = await cursor.to_list()
        # The newest version read that a gateway could have written: a database writer's
        # entry in range (a list holding a number in it) is left out like any other that does
        # not verify. A page of nothing but such entries ends the read rather than repeat it.
        last = max(filter(None, map(_stored_version, rows)), default=None)
        return await self._verified_entries(rows), last

    async def changes_since(self, moment: datetime) -> list[HistoryEntry]:
        """Every tenant's versions written at or after ``moment``, oldest first; an entry that
        does not verify is left out (logged once)."""
        cursor = self._history.find(
            {"changedAt": {"$gte": moment}}, sort=[("changedAt", ASCENDING)]
        )
        return await self._verified_entries(await cursor.to_list())

    async def _verified_entries(self, rows: list[dict[str, Any]]) -> list[HistoryEntry]:
        """``rows`` (each tenant's in version order) that verify, as entries. Each verified
        hash vouches for the next version's link, so a page costs one read of the version
        before it, not one per entry."""
        known: dict[str, dict[int, str]] = {}
        entries = []
        for row in rows:
            if not await self._verifies(row, known.setdefault(_entry_tenant(row), {})):
                continue
            # Verified: its tenant is text and its version a number.
            known[row["tenantId"]][row["version"]] = str(row["chain"]["hash"])
            entries.append(history_entry(row))
        return entries

    async def _verifies(self, row: Mapping[str, Any], known: Mapping[int, str]) -> bool:
        """Whether ``row`` verifies as ``_verify`` checks it, for an entry to be published or
        replayed: one that does not is dropped, and logged once, naming its tenant and version
        (never its values)."""
        fault = await self._fault(row, known)
        if fault is None:
            return True
        self._tampered_entry(_entry_tenant(row), _stored_version(row), fault, newest=False)
        return False

    async def epic_gateway_ids(self) -> dict[str, tuple[str, int]]:
        """Every Epic tenant's external gateway id, with the tenant's id and settings version.
        Only the id's own path is read (a whole ``providers`` is every EHR's settings: at
        100,000 tenants, hundreds of megabytes for a few of them). The embedded server answers
        that projection with a flat dotted member where MongoDB nests it: both are read."""
        path = gateway_id_path(EhrProvider.EPIC)
        found: dict[str, tuple[str, int]] = {}
        async for row in self._settings.find(
            {"provider": EhrProvider.EPIC.value}, {path: 1, "version": 1}
        ):
            gateway_id = row[path] if path in row else _nested(row, path.split("."))
            if isinstance(gateway_id, str):
                found[gateway_id] = (str(row["_id"]), _stored_version(row))
        return found

    async def find_by_gateway_id(self, gateway_id: str) -> TenantSettings | None:
        """The tenant one of whose providers has this external gateway id in its checked
        settings. Every document the index finds is checked, not only the first: a database
        writer can copy an id into other tenants' documents, and must not hide the tenant it
        belongs to behind them. Each copy is logged as an edited document as it is checked;
        an id is unique to its tenant, so no other tenant's document holds it unedited. A
        tenant whose history does not verify is passed over too (the same writer could have
        broken a decoy's history), and its refusal raised only if no other tenant holds the
        id. The owner is also looked for among the tenants whose history holds the id, as the
        same writer can edit the id out of its owner's document."""
        refused: HistoryTampered | None = None
        checked: set[str] = set()
        for query in gateway_id_queries(gateway_id):
            async for document in self._settings.find(query):
                if not isinstance(document["_id"], str):
                    continue  # a database writer's document (an object _id): no tenant's
                checked.add(document["_id"])
                try:
                    settings = await self._checked(document)
                except HistoryTampered as tampered:
                    refused = refused or tampered
                    continue
                if _holds(settings, gateway_id):
                    return settings
        # No document holding the id holds it in its checked settings: a database writer may
        # have edited it out of its owner's document (or swapped two tenants' ids), and the
        # owner's checked settings, its verified history entry, still hold it. So the tenants
        # whose history ever held the id are checked too: only an id no document answers for
        # (made up, rotated away, or edited away) costs these seeks, each over the index
        # entries of the versions holding it (none for a made-up id).
        for provider in EhrProvider:
            path = f"{_ENTRY_SETTINGS}.{gateway_id_path(provider)}"
            # Text tenant ids only (tenant_filter.first_text_tenant): a database writer's entry
            # whose tenant is null, a number or a list must not end the walk before the owner.
            tenants: Mapping[str, Any] = TEXT_TENANTS
            while True:
                row = await first_text_tenant(
                    self._history,
                    {path: gateway_id, "tenantId": tenants},
                    sort=[("tenantId", ASCENDING)],
                )
                if row is None:
                    break
                tenant_id = row["tenantId"]
                tenants = {"$gt": tenant_id}
                if tenant_id in checked:
                    continue
                checked.add(tenant_id)
                try:
                    owner = await self.get(tenant_id)
                except HistoryTampered as tampered:
                    refused = refused or tampered
                    continue
                if owner is not None and _holds(owner, gateway_id):
                    return owner
        if refused is not None:
            raise refused
        return None

    async def history_entry_by_id(self, entry_id: Any) -> HistoryEntry | None:
        """The history entry with this ``_id``. One this process stored is taken, once, from
        what it inserted: an entry never changes once stored, except that key rotation may
        re-encrypt its secrets, and a read could as well have come before that."""
        own = self._unannounced.pop(entry_id, None)
        if own is not None:
            return history_entry(*own)
        row = await self._history.find_one({"_id": entry_id})
        if row is None:
            return None
        # Another process wrote it, or a database writer without the key inserted it: only an
        # entry that verifies reaches the read cache and subscribers.
        if not await self._verifies(row, {}):
            return None
        self._remember_head(row)
        # If its writer dies before the rest of its write, this process finishes it
        # (storage.repair).
        self.repairs.announced(row["tenantId"], row["version"])  # verified: a number
        return history_entry(row)

    def watch_history(self, resume_after: Mapping[str, Any] | None) -> Any:
        """A change stream of new history entries (one per stored version)."""
        # A server that holds an empty poll open (MongoDB) answers it within a second: the
        # change feed's watchdog (EHRGW_CHANGE_FEED_STALL_S) counts on that bound.
        return self._history.watch(
            [{"$match": {"operationType": "insert"}}],
            resume_after=resume_after,
            max_await_time_ms=WATCH_AWAIT_MS,
        )
