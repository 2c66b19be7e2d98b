"""The tenant directory: one row per tenant, kept on the tenant's current settings document.

Each settings document carries a ``directory`` part, written in the same replace as the version
it describes (and rolled forward with it):

- ``ready``, ``missing`` (how many checks are MISSING) and ``missingPaths``: the tenant's
  readiness (ehr.readiness.assess) under the deployment's identifier defaults, and ``basis``,
  what that assessment depended on besides the settings (``assessment_basis``); a gateway that
  starts with another basis assesses the stored rows again (storage.migrations);
- ``byId`` and ``byChange``: the two orders the directory is read in, as single strings, so a
  page is one range read on one index and the next page starts where the last row's key ends
  (keyset pagination: a deep page costs what the first does). ``byId`` is the tenant id;
  ``byChange`` the row's ``listedAt`` (milliseconds, fixed width) then the tenant id, unique
  per tenant, so rows changed in the same millisecond still have a strict order;
- ``listedAt``: when the version's document was sent to the database, by its writer or by the
  roll-forward that completed it (the directory's ``changedAt``). Not when the write began:
  a write that waits behind a slow database, or is completed by a roll-forward seconds or
  minutes later, would otherwise appear behind rows a poller has already passed. A replace
  acknowledged within the write's deadline (EHRGW_DB_TIMEOUT_MS) became visible within it of its
  stamp; the schema tells pollers to overlap by more than that (``CHANGED_SINCE_OVERLAP``) and
  to drop the (tenant, version) rows they already have. The deadline bounds only how long the
  writer waits, not when the database applies what it was sent: a replace the writer gave up on
  (the version is then orphaned) may still land, late, with its old stamp. So the roll-forward
  that completes an orphan lists the row again, at its own time, when it finds the document
  already at that version, and is done only once that is acknowledged; a listing only moves
  forward, so one held up in turn changes nothing. A row's last listing time is therefore always
  one whose write was acknowledged within the deadline.

  Not a server-side stamp (an update pipeline with ``$$NOW``, or a replace conditional on the
  server's clock): both need the server's clock in an expression, ``$$NOW``, which the embedded
  server does not have; this needs only a version and a string comparison, on either server.

The row is outside the document's seal (storage.chain.document_seal: it is stamped as the write
is sent, listed again by a roll-forward and assessed again at start, none of which changes the
settings), and a listing reads it without the settings, so it carries a seal of its own:
``seal``, a MAC (with the chain's key) over the row and the document fields a listing shows with
it (tenant id, version, provider, updatedAt, updatedBy). A row a database writer edited, or one
without a seal, is not listed (``row_fault``): checking it against the settings instead would
read and assess every listed tenant's whole document, and a row whose filter or order fields
were edited is not even in the right place on the index to be listed from its settings.

Why strings in the document rather than ``_id`` and ``updatedAt``: the embedded server answers a
range on ``_id`` or a date comparison by reading every document in Python, and cannot put
``_id`` in a compound index; a string field inside the document is an indexed range on it and on
MongoDB alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.ehr.readiness import assess, assessment_basis
from ehr_gateway.storage.chain import Fault, canonical
from ehr_gateway.storage.secrets import ChainKeys

DIRECTORY = "directory"
BY_ID = "byId"
BY_CHANGE = "byChange"
LISTED_AT = "listedAt"
ROW_SEAL = "seal"
# Rows sealed (``seal_row``) are stored on this basis beside the assessment's: a gateway that
# starts over rows from before row seals assesses and seals them again (storage.migrations).
_SEALED_ROWS = "sealed-rows"
UNSEALED = "UNSEALED"
# How far back a ``changedSince`` poller starts from the last changedAt it saw (the schema says
# so): more than a write's database deadline (5 s by default) between its stamp and its row
# becoming visible, with room for replicas' clocks to differ.
CHANGED_SINCE_OVERLAP_S = 30
# Width of the milliseconds in ``byChange``: enough for any date before the year 5138.
_MS_DIGITS = 14


def change_key(changed_at: datetime | None, tenant_id: str = "") -> str:
    """The ``byChange`` key of a change at ``changed_at``; with no tenant id, the lowest key of
    that millisecond (where a changed-since range starts)."""
    if changed_at is None:
        millis = 0
    else:
        if changed_at.tzinfo is None:  # BSON dates come back naive, in UTC
            changed_at = changed_at.replace(tzinfo=UTC)
        millis = max(0, int(changed_at.timestamp() * 1000))
    key = f"{millis:0{_MS_DIGITS}d}"
    return f"{key} {tenant_id}" if tenant_id else key


def listing_time() -> datetime:
    """Now, as a BSON date keeps it (milliseconds)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def stamp(row: dict[str, Any], tenant_id: str, listed_at: datetime) -> None:
    """Set the row's listing time, and the change key that orders it."""
    row[LISTED_AT] = listed_at
    row[BY_CHANGE] = change_key(listed_at, tenant_id)


def row_basis(defaults: IdentifierDefaults) -> str:
    """What a stored row depends on besides the settings (``assessment_basis``), and its form."""
    return f"{assessment_basis(defaults)};{_SEALED_ROWS}"


def _row_message(document: Mapping[str, Any]) -> bytes:
    """What a row's seal covers: the row, and the fields of its document a listing shows."""
    row = {key: value for key, value in document[DIRECTORY].items() if key != ROW_SEAL}
    listed = {name: document.get(name) for name in ("_id", "version", "provider", "updatedAt",
                                                    "updatedBy")}  # fmt: skip
    return DIRECTORY.encode() + b"\0" + canonical({**listed, DIRECTORY: row})


def seal_row(document: dict[str, Any], keys: ChainKeys) -> None:
    """Seal ``document``'s directory row, in place (after its last change: a stamp)."""
    document[DIRECTORY][ROW_SEAL] = {
        "mac": keys.sign(_row_message(document)),
        "keyId": keys.key_id,
    }


def row_fault(document: Mapping[str, Any], keys: ChainKeys) -> str | None:
    """None if ``document``'s directory row (as a listing reads it: ``PROJECTION``) carries a
    seal that verifies; else UNSEALED, BAD_MAC or UNKNOWN_KEY."""
    row = document.get(DIRECTORY)
    seal = row.get(ROW_SEAL) if isinstance(row, dict) else None
    if not isinstance(seal, dict):
        return UNSEALED
    try:
        message = _row_message(document)
    except TypeError:  # a value of a type no gateway stores (canonical refuses it)
        return Fault.ALTERED
    verified = keys.check(str(seal.get("keyId", "")), message, str(seal.get("mac", "")))
    if verified is None:
        return Fault.UNKNOWN_KEY
    return None if verified else Fault.BAD_MAC


def directory_row(
    settings: TenantSettings, defaults: IdentifierDefaults, listed_at: datetime | None = None
) -> dict[str, Any]:
    """The ``directory`` part of ``settings``' stored document, listed at ``listed_at`` (by
    default when the settings were written)."""
    assessed = assess(settings, defaults)
    missing = assessed.missing
    row: dict[str, Any] = {
        "ready": assessed.ready,
        "missing": len(missing),
        "missingPaths": [".".join(check.path) for check in missing],
        "basis": row_basis(defaults),
        BY_ID: settings.tenant_id,
    }
    at = listed_at or settings.updated_at
    if at is None:
        row[BY_CHANGE] = change_key(None, settings.tenant_id)
    else:
        stamp(row, settings.tenant_id, at)
    return row


def _field(name: str) -> str:
    return f"{DIRECTORY}.{name}"


# Each filter (provider, readiness, both, neither) in each order. The single-field indexes on
# the filtered fields also tell the embedded server that they are never arrays, so an equality
# on them stays an index lookup rather than a search through array members.
_FILTERS: tuple[tuple[str, ...], ...] = ((), ("provider",), (_field("ready"),))
INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    *(
        (
            "_".join(["directory", *(f.rpartition(".")[2] for f in filters), order.lower()]),
            (*filters, _field(order)),
        )
        for order in (BY_ID, BY_CHANGE)
        for filters in (*_FILTERS, ("provider", _field("ready")))
    ),
    ("directory_provider", ("provider",)),
    ("directory_ready", (_field("ready"),)),
    ("directory_basis", (_field("basis"),)),
)


async def create_indexes(settings: AsyncCollection[dict[str, Any]]) -> None:
    for name, fields in INDEXES:
        await settings.create_index([(field, ASCENDING) for field in fields], name=name)


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    """One tenant as the directory lists it."""

    tenant_id: str
    provider: EhrProvider | None
    version: int
    ready: bool
    missing: int
    missing_paths: tuple[str, ...]
    changed_at: datetime | None
    changed_by: str | None
    key: str  # the row's key in the order it was read in


@dataclass(frozen=True, slots=True)
class DirectoryQuery:
    """Which rows, in which order, from where. ``tenants`` None: every tenant."""

    tenants: frozenset[str] | None
    provider: EhrProvider | None
    ready: bool | None
    changed_since: datetime | None
    after: str | None  # the key of the last row of the previous page
    limit: int

    @property
    def order(self) -> str:
        """By last change (oldest first) when asked for changes since a time, else by id."""
        return BY_CHANGE if self.changed_since is not None else BY_ID


PROJECTION = {"version": 1, "provider": 1, "updatedAt": 1, "updatedBy": 1, DIRECTORY: 1}


def find_arguments(query: DirectoryQuery) -> tuple[dict[str, Any], str]:
    """The filter of the find that reads ``query``'s page, and the field it is sorted on."""
    order = _field(query.order)
    since = None if query.changed_since is None else change_key(query.changed_since)
    # One bound, the higher: given both, the database would walk the range from the lower one
    # (changed-since) and filter on the other, so a deep page would read every row before it.
    bounds: dict[str, str]
    if query.after is not None and (since is None or query.after >= since):
        bounds = {"$gt": query.after}
    elif since is not None:
        bounds = {"$gte": since}
    else:
        bounds = {"$gt": ""}  # every row has a key; a document without one is not a row yet
    found: dict[str, Any] = {order: bounds}
    if query.tenants is not None:
        found["_id"] = {"$in": sorted(query.tenants)}
    if query.provider is not None:
        found["provider"] = query.provider.value
    if query.ready is not None:
        found[_field("ready")] = query.ready
    return found, order


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    """The rows of a page that are listed, whether more remain, and the key the page ended on:
    the last row read, listed or not, so that the next page starts after it."""

    rows: list[DirectoryRow]
    more: bool
    end: str | None


async def read_page(
    settings: AsyncCollection[dict[str, Any]],
    query: DirectoryQuery,
    listed: Callable[[Mapping[str, Any]], bool] = lambda document: True,
) -> DirectoryPage:
    """Up to ``query.limit`` rows after ``query.after``: those ``listed`` lets through."""
    found, order = find_arguments(query)
    sort = [(order, ASCENDING)]
    wanted = query.limit + 1
    documents = await settings.find(found, projection=PROJECTION, sort=sort, limit=wanted).to_list()
    if not all(_key(document, query.order) is not None for document in documents):
        documents = await _text_keyed(settings, found, sort, query.order, wanted)
    read = documents[: query.limit]
    end = _key(read[-1], query.order) if read else None
    rows = [_row(document, query.order) for document in read if listed(document)]
    return DirectoryPage(rows, len(documents) > query.limit, end)


def _key(document: Mapping[str, Any], order: str) -> str | None:
    """A document's key in ``order``: text, as every gateway writes it; None for anything else
    a database writer put there (or a directory part that is not an object)."""
    row = document.get(DIRECTORY)
    key = row.get(order) if isinstance(row, dict) else None
    return key if type(key) is str else None


async def _text_keyed(
    settings: AsyncCollection[dict[str, Any]],
    found: Mapping[str, Any],
    sort: list[tuple[str, int]],
    order: str,
    wanted: int,
) -> list[dict[str, Any]]:
    """Up to ``wanted`` documents whose key is text, from the start of the range: a range on
    text also matches a list holding text (MongoDB) and, on the embedded server, any list,
    date, binary, ObjectId or object, which sort before, among or after text keys. Such a row
    (a database writer's: its seal never verifies) is stepped over, neither listed nor the key
    the next page starts after: that key, turned into text, would skip every row below it or
    list again every row above it. Only a page that met one reads on, in batches."""
    rows = settings.find(found, projection=PROJECTION, sort=sort, batch_size=wanted)
    kept: list[dict[str, Any]] = []
    try:
        async for document in rows:
            if _key(document, order) is not None:
                kept.append(document)
                if len(kept) == wanted:
                    break
    finally:
        await rows.close()
    return kept


def _row(document: Mapping[str, Any], order: str) -> DirectoryRow:
    row = document[DIRECTORY]
    # Rows stored before listing times existed are ordered by when they were written.
    changed_at = row.get(LISTED_AT) or document.get("updatedAt")
    if changed_at is not None and changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    provider = document.get("provider")
    return DirectoryRow(
        tenant_id=str(document["_id"]),
        provider=None if provider is None else EhrProvider(provider),
        version=int(document.get("version") or 0),
        ready=bool(row["ready"]),
        missing=int(row["missing"]),
        missing_paths=tuple(row.get("missingPaths") or ()),
        changed_at=changed_at,
        changed_by=document.get("updatedBy"),
        key=str(row[order]),
    )
