"""Tamper evidence for history and the audit log: each entry is chained to the one before it.

An entry's ``chain`` holds ``prev`` (the hash of the entry before it in its tenant's log, or
GENESIS for the first), ``hash`` (SHA-256 over ``prev`` and the entry's content), ``mac``
(HMAC-SHA256 over ``hash``, and for history over the sealed secrets too) and ``keyId`` (which
key made the MAC). So an entry altered, removed, inserted or moved no longer links to its
neighbours, and a process without the key cannot forge a MAC to cover it up.

The links are hashes, not MACs, so that re-keying (key rotation) rewrites each entry's MAC but
never a link: entries written meanwhile by running gateways still follow their predecessors.
History entries' sealed secrets (ciphertext, key id, fingerprint) are outside the hash for the
same reason (rotation re-seals them in place) and inside the MAC, so they are still covered.

The MAC key is derived from the deployment's encryption key with HKDF, never that key itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from bson import ObjectId

from ehr_gateway.storage.secrets import ChainKeys, stored_secrets

GENESIS = "0" * 64
HISTORY_LOG = "history"
AUDIT_LOG = "audit"
# The fields of a sealed secret that key rotation rewrites.
_SEALED_FIELDS = ("ciphertext", "keyId", "fingerprint")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _plain(value: Any) -> Any:
    """The JSON form of the BSON values entries hold. Dates as integer milliseconds (what BSON
    keeps), so an entry hashes the same before it is stored and after it is read back."""
    if isinstance(value, datetime):
        # Floored like the timetuple-and-microseconds sum it replaces (same bytes, same
        # hashes), without building a time tuple: this runs for every date of every entry a
        # verification reads.
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return {"$date": (moment - _EPOCH) // _MILLISECOND}
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, bytes):
        return {"$binary": value.hex()}
    raise TypeError(f"an entry holds a value of type {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """One byte string per value, whatever order a server returns fields in: the standard
    encoder's compact, key-sorted, unescaped UTF-8 form, in which every stored hash was made.

    orjson writes the same bytes in about a tenth of the time (every write hashes its version
    several times, every verification again) for the types BSON documents hold, floats aside.
    Those it writes in other forms than the standard encoder, NaN and the infinities as null,
    which would let one value stand for another. So a value holding anything else (a float,
    which no gateway stores, only a database writer could; a subclass; a type the standard
    encoder refuses and orjson would write) takes the standard encoder, as does whatever orjson
    refuses (a lone surrogate a client sent, an integer past 64 bits, a key that is not text).
    tests/storage/test_canonical_form.py compares the two for generated values."""
    if _orjson_writes_it(value):
        try:
            return orjson.dumps(value, default=_plain, option=_ORJSON_CANONICAL)
        except TypeError:  # orjson's JSONEncodeError is one
            pass
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    ).encode("utf-8", "surrogatepass")  # a lone surrogate a client sent is bytes like the rest


# Dates, bytes and object ids go to ``_plain``, as the standard encoder sends them to it.
_ORJSON_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_ORJSON_LEAVES = frozenset({str, int, bool, type(None), datetime, bytes, ObjectId})


def _orjson_writes_it(value: Any) -> bool:
    """Whether ``value`` holds only dicts, lists, tuples and ``_ORJSON_LEAVES`` (exactly those
    types, not subclasses)."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind not in _ORJSON_LEAVES:
            return False
    return True


def _hash(log: str, prev: str, content: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        log.encode() + b"\0" + canonical({"prev": prev, "entry": content})
    ).hexdigest()


# Outside a history entry's hash: the idempotency key is forgotten (removed) after its
# retention, which must not break the link to the next entry.
_OUTSIDE_HASH = ("_id", "chain", "idempotency")


def _history_parts(entry: Mapping[str, Any]) -> tuple[dict[str, Any], list[list[Any]]]:
    """A history entry's content without its sealed secrets, and the sealed secrets."""
    content = {key: value for key, value in entry.items() if key not in _OUTSIDE_HASH}
    settings = _copied(dict(content.get("settings") or {}))
    sealed: list[list[Any]] = []
    if "_id" in settings:
        for secret, binding in stored_secrets(settings):
            sealed.append([binding, *(secret.pop(name, None) for name in _SEALED_FIELDS)])
    content["settings"] = settings
    return content, sorted(sealed, key=lambda item: str(item[0]))


def _copied(value: Any) -> Any:
    """``value``'s dicts and lists copied, to take sealed fields out of without touching the
    entry; every other value is shared, as nothing here changes one in place. (copy.deepcopy
    did the same at several times the cost, once for every version written.)"""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _history_message(digest: str, sealed: list[list[Any]]) -> bytes:
    return HISTORY_LOG.encode() + b"\0" + digest.encode() + b"\0" + canonical(sealed)


def _audit_message(digest: str) -> bytes:
    return AUDIT_LOG.encode() + b"\0" + digest.encode()


@dataclass(frozen=True, slots=True)
class SettingsParts:
    """A settings document as hashes cover it (``content``: sealed fields taken out) and its
    sealed secrets, made once for both the history entry of a version and the seal of its
    document, which hold the same ``source``."""

    source: Mapping[str, Any]
    content: dict[str, Any]
    sealed: list[list[Any]]


def settings_parts(settings: Mapping[str, Any]) -> SettingsParts:
    content, sealed = _history_parts({"settings": settings})
    return SettingsParts(settings, content["settings"], sealed)


def _parts_of(
    entry: Mapping[str, Any], parts: SettingsParts | None
) -> tuple[dict[str, Any], list[list[Any]]]:
    if parts is None or parts.source is not entry.get("settings"):
        return _history_parts(entry)
    content = {key: value for key, value in entry.items() if key not in _OUTSIDE_HASH}
    content["settings"] = parts.content
    return content, parts.sealed


def history_link(
    entry: Mapping[str, Any], prev: str, keys: ChainKeys, parts: SettingsParts | None = None
) -> dict[str, str]:
    """The ``chain`` of a history entry that follows the entry whose hash is ``prev``
    (``parts``: of the entry's settings, if made already)."""
    content, sealed = _parts_of(entry, parts)
    digest = _hash(HISTORY_LOG, prev, content)
    mac = keys.sign(_history_message(digest, sealed))
    return {"prev": prev, "hash": digest, "mac": mac, "keyId": keys.key_id}


def audit_link(row: Mapping[str, Any], prev: str, keys: ChainKeys) -> dict[str, str]:
    """The ``chain`` of an audit entry that follows the entry whose hash is ``prev``."""
    content = {key: value for key, value in row.items() if key != "chain"}
    digest = _hash(AUDIT_LOG, prev, content)
    return {"prev": prev, "hash": digest, "mac": keys.sign(_audit_message(digest)),
            "keyId": keys.key_id}  # fmt: skip


class Fault:
    """Why one entry fails verification on its own (its link to its predecessor aside)."""

    ALTERED = "ALTERED"
    BAD_MAC = "BAD_MAC"
    UNKNOWN_KEY = "UNKNOWN_KEY"


def entry_fault(log: str, entry: Mapping[str, Any], keys: ChainKeys) -> str | None:
    """None if the entry's content matches its stored hash and its MAC verifies; else which of
    the two fails (ALTERED, BAD_MAC) or UNKNOWN_KEY when its MAC key is not configured. An
    entry a database writer gave fields of types no gateway writes (a link's hash as a number,
    settings as a string, a value BSON has and JSON lacks) is ALTERED, never an error: whoever
    verifies it names it as the broken link."""
    chain = entry.get("chain")
    if not isinstance(chain, dict):
        return Fault.ALTERED
    digest, prev = chain.get("hash"), chain.get("prev")
    if not isinstance(digest, str) or not isinstance(prev, str):
        return Fault.ALTERED
    try:
        if log == HISTORY_LOG:
            if not isinstance(entry.get("settings"), dict):
                return Fault.ALTERED
            content, sealed = _history_parts(entry)
            message = _history_message(digest, sealed)
        else:
            content = {key: value for key, value in entry.items() if key != "chain"}
            message = _audit_message(digest)
        if _hash(log, prev, content) != digest:
            return Fault.ALTERED
    except (TypeError, ValueError, AttributeError):  # stored_secrets over retyped settings
        return Fault.ALTERED
    verified = keys.check(str(chain.get("keyId", "")), message, str(chain.get("mac", "")))
    if verified is None:
        return Fault.UNKNOWN_KEY
    return None if verified else Fault.BAD_MAC


def legacy_audit_digest(prev: str, entry: Mapping[str, Any]) -> str:
    """The hash over a tenant's audit entries from before the chain, in their order, up to and
    including ``entry`` (``prev``: up to the one before it; GENESIS before the first). Adoption
    records it under the MAC of version 1's history entry (storage.legacy), the only thing
    that vouches for these entries, which carry no MAC of their own."""
    return hashlib.sha256(
        b"legacy-audit\0" + prev.encode() + b"\0" + canonical(dict(entry))
    ).hexdigest()


def remac(log: str, entry: dict[str, Any], keys: ChainKeys) -> None:
    """Give an entry that verified a MAC under the current key (key rotation): its hash, and so
    every link, stay as they are."""
    chain = entry["chain"]
    if log == HISTORY_LOG:
        _, sealed = _history_parts(entry)
        message = _history_message(chain["hash"], sealed)
    else:
        message = _audit_message(chain["hash"])
    chain.update(mac=keys.sign(message), keyId=keys.key_id)


# A tenant's settings document is the materialised view of its newest history entry, and reads
# and writes start from it: it carries a seal made like a history entry's chain (a hash over its
# settings without sealed secrets, a MAC over that hash and the sealed secrets), so a value a
# database writer edits into it is found when it is loaded instead of being served, or signed
# into the next version by whichever write comes next. No ``prev``: the document names no
# neighbour, its version is in the content the hash covers.
DOCUMENT_SEAL = "document"


def _document_message(digest: str, sealed: list[list[Any]]) -> bytes:
    return DOCUMENT_SEAL.encode() + b"\0" + digest.encode() + b"\0" + canonical(sealed)


def document_seal(
    settings: Mapping[str, Any], keys: ChainKeys, parts: SettingsParts | None = None
) -> dict[str, str]:
    """The seal of a settings document (``settings``: the document without derived fields;
    ``parts``: of those settings, if made already)."""
    content, sealed = _parts_of({"settings": settings}, parts)
    digest = _hash(DOCUMENT_SEAL, GENESIS, content)
    return {"hash": digest, "mac": keys.sign(_document_message(digest, sealed)),
            "keyId": keys.key_id}  # fmt: skip


def document_fault(
    settings: Mapping[str, Any], seal: Mapping[str, Any], keys: ChainKeys
) -> str | None:
    """As ``entry_fault``, for a settings document and its seal."""
    content, sealed = _history_parts({"settings": settings})
    digest = str(seal.get("hash", ""))
    if _hash(DOCUMENT_SEAL, GENESIS, content) != digest:
        return Fault.ALTERED
    message = _document_message(digest, sealed)
    verified = keys.check(str(seal.get("keyId", "")), message, str(seal.get("mac", "")))
    if verified is None:
        return Fault.UNKNOWN_KEY
    return None if verified else Fault.BAD_MAC


def same_settings(document: Mapping[str, Any], entry_settings: Mapping[str, Any]) -> bool:
    """Whether a settings document (without derived fields) holds what a history entry's
    settings do, sealed secrets aside (key rotation re-seals each copy on its own)."""
    ours, theirs = (
        _history_parts({"settings": document}),
        _history_parts({"settings": entry_settings}),
    )
    return canonical(ours[0]) == canonical(theirs[0])
