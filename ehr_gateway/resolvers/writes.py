"""The one way settings are written: read, change, validate, compare-and-set, with history.

A write may carry an idempotency key (``current_idempotency``, set by the GraphQL layer for the
mutation being run). The key, hashed with the caller's subject, is stored in the version's
history entry, in the same insert that is the write's commit point, so a write that landed is
always found by its key: a retry with the same key, by the same caller to the same tenant, within
``IDEMPOTENCY_RETENTION`` is answered with the version the first attempt stored and stores
nothing. Keys dedupe stored writes only: a first attempt that stored nothing (refused, in
conflict, or it never reached the database) left nothing to repeat, and the retry runs as a new
write, answered as the settings are now.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ehr_gateway.ehr.blocks import TenantSettings, permission_to_change
from ehr_gateway.ehr.changes import blocks_of, changed_paths, field_changes, settings_tree, value_at
from ehr_gateway.ehr.common import SettingsBlock
from ehr_gateway.resolvers.audit import write_record
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome, Saved
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.runtime.access import Forbidden, Permission
from ehr_gateway.storage.repository import Conflict
from ehr_gateway.storage.secrets import stored_secrets

# Without expectedVersion a write applies to whatever version is current; it is retried this
# many times if other writers keep moving the version under it.
_UNCONDITIONAL_ATTEMPTS = 8

Change = Callable[[TenantSettings], TenantSettings | Failed]

# How long a stored write's idempotency key is kept (as Stripe keeps its keys).
IDEMPOTENCY_RETENTION = timedelta(hours=24)
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
_REQUEST_MAC_LABEL = b"idempotency-request\0"


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The idempotency key of the mutation being run: ``key`` as the client sent it, ``caller``
    (the token subject) whose key it is, and ``request``, what the mutation asks (its name and
    arguments, canonical bytes), which a retry must repeat."""

    key: str
    caller: str
    request: bytes

    @property
    def scope(self) -> str:
        """The key as stored: another caller's same key is another key."""
        return hashlib.sha256(self.caller.encode() + b"\0" + self.key.encode()).hexdigest()


# Set around one root mutation's resolver (a contextvar, as the operation name for the audit
# record is: mutations of one WebSocket connection may run at once, and share its Context).
current_idempotency: ContextVar[Idempotency | None] = ContextVar(
    "current_idempotency", default=None
)


async def write(
    context: Context,
    tenant_id: str,
    expected_version: int | None,
    blocks: list[SettingsBlock] | None,
    change: Change,
) -> Outcome:
    """Apply ``change`` to the tenant's current settings and store the result as a new version.

    With ``expected_version`` the write is refused (Conflict) unless the tenant is still at that
    version. A change that alters nothing stores no new version. ``blocks`` None: the blocks
    the change touched."""
    refused = check_tenant_id(tenant_id)
    if refused:
        return refused
    if expected_version is not None and expected_version < 0:
        return Failed.one(("expectedVersion",), "OUT_OF_RANGE", "must be 0 or more")
    async with context.repository.write_turns.turn(tenant_id):
        idempotency = current_idempotency.get()
        if idempotency is None:
            outcome = await _write_in_turn(
                context, tenant_id, expected_version, blocks, change, None
            )
        else:
            outcome = await _first_outcome(context, tenant_id, idempotency) or (
                await _write_in_turn(
                    context, tenant_id, expected_version, blocks, change, idempotency
                )
            )
        if isinstance(outcome, Saved):
            # This replica's next read sees this version at once, not after the change feed,
            # and its next write to the tenant starts from it (told before the next writer in
            # line gets the lock).
            context.settings_cache.changed(tenant_id, outcome.settings.version)
            context.settings_cache.written(outcome.settings)
        elif isinstance(outcome, Conflict):
            # A version this process may not have heard of yet: what it cached is behind.
            context.settings_cache.changed(tenant_id, outcome.current_version)
    return outcome


async def _write_in_turn(
    context: Context,
    tenant_id: str,
    expected_version: int | None,
    blocks: list[SettingsBlock] | None,
    change: Change,
    idempotency: Idempotency | None,
) -> Outcome:
    """``write``, holding the tenant's lock. With ``idempotency``, no version stored with the
    key was found just before; any outcome but a version stored now is checked against the key
    again, since another replica may have stored it meanwhile (then its version is the
    answer)."""
    cached = context.settings_cache.write_base(tenant_id)
    if cached is not None:
        outcome = await _save_from(context, cached, expected_version, blocks, change, idempotency)
        if outcome is not None:
            return outcome
        # The cached settings were behind, or the outcome was anything but a stored version:
        # decide it again from the database, as if the cache had not been there.
    conflict = Conflict(0)
    for attempt in range(_UNCONDITIONAL_ATTEMPTS):
        if attempt:  # another process wrote in between: back off a little, with jitter
            await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        current = await context.repository.get(tenant_id) or TenantSettings(tenant_id=tenant_id)
        if expected_version is not None and expected_version != current.version:
            return await _unless_stored(context, tenant_id, idempotency, Conflict(current.version))
        changed = change(current)
        if isinstance(changed, Failed):
            return await _unless_stored(context, tenant_id, idempotency, changed)
        before, after = settings_tree(current), settings_tree(changed)
        paths = changed_paths(before, after)
        if not paths:
            return await _unless_stored(context, tenant_id, idempotency, Saved(current))
        refused = _refusal(context, tenant_id, before, after, paths)
        if refused is not None:
            raise refused
        saved = await _save(context, current, changed, before, after, paths, blocks, idempotency)
        if isinstance(saved, TenantSettings):
            return Saved(saved)
        conflict = saved
        if idempotency is not None:
            # The insert may have been refused for the key rather than the version.
            first = await _first_outcome(context, tenant_id, idempotency)
            if first is not None:
                return first
        if expected_version is not None:
            return conflict
    return conflict


async def _first_outcome(
    context: Context, tenant_id: str, idempotency: Idempotency
) -> Outcome | None:
    """What the write that stored ``idempotency``'s key answered: that version's settings (not
    the current ones); a refusal if the key was stored for another request; None if no version
    within the retention carries the key."""
    found = await context.repository.idempotent_entry(
        tenant_id, idempotency.scope, IDEMPOTENCY_RETENTION
    )
    if found is None:
        return None
    entry, stored = found
    same = context.repository.chain.check(
        str(stored.get("keyId")),
        _REQUEST_MAC_LABEL + idempotency.request,
        str(stored.get("request")),
    )
    if not same:  # another request, or one whose MAC key is no longer configured: not repeated
        return Failed.one(
            ("idempotencyKey",),
            IDEMPOTENCY_KEY_REUSED,
            f"this key was used within {_hours(IDEMPOTENCY_RETENTION)} hours for another request "
            f"(version {entry.version}); nothing was stored. Send a new key for a new request",
        )
    return Saved(entry.settings)


async def _unless_stored(
    context: Context, tenant_id: str, idempotency: Idempotency | None, outcome: Outcome
) -> Outcome:
    if idempotency is None:
        return outcome
    return await _first_outcome(context, tenant_id, idempotency) or outcome


def _hours(retention: timedelta) -> int:
    return int(retention.total_seconds() // 3600)


def _stored_idempotency(context: Context, idempotency: Idempotency | None) -> dict[str, str] | None:
    """What a history entry keeps of the key: the scoped key's hash and a MAC of the request
    (a MAC rather than a hash: the arguments may hold a secret, such as a password, that a bare
    hash would let anyone who reads history guess offline)."""
    if idempotency is None:
        return None
    chain = context.repository.chain
    return {
        "key": idempotency.scope,
        "request": chain.sign(_REQUEST_MAC_LABEL + idempotency.request),
        "keyId": chain.key_id,
    }


async def _save_from(
    context: Context,
    cached: TenantSettings,
    expected_version: int | None,
    blocks: list[SettingsBlock] | None,
    change: Change,
    idempotency: Idempotency | None,
) -> Saved | None:
    """The write on this process's cached settings, which saves reading the document back: the
    stored version, or None for anything else (a conflict, a refusal, nothing to change), which
    cached settings cannot be trusted to decide: they may be behind the database. They are never
    stored over a newer version: the history insert refuses a base version that is no longer
    current.

    Only key rotation changes a stored version in place (it re-seals secrets under the current
    key), so settings holding a secret sealed under another key are not used: writing them
    back would undo the rotation."""
    if expected_version is not None and expected_version != cached.version:
        return None
    before = settings_tree(cached)
    current_key = context.secrets.key_id
    sealed = stored_secrets({**before, "_id": cached.tenant_id})
    if any(secret.get("keyId") != current_key for secret, _ in sealed):
        return None
    changed = change(cached)
    if isinstance(changed, Failed):
        return None
    after = settings_tree(changed)
    paths = changed_paths(before, after)
    if not paths or _refusal(context, cached.tenant_id, before, after, paths) is not None:
        return None  # a refusal is decided on the database's settings, which may differ
    saved = await _save(context, cached, changed, before, after, paths, blocks, idempotency)
    return Saved(saved) if isinstance(saved, TenantSettings) else None


def _refusal(
    context: Context,
    tenant_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
    paths: list[str],
) -> Forbidden | None:
    """Why the caller may not store the change of ``paths`` from ``before`` to ``after``:
    settings whose model field is guarded by a permission the caller lacks. Only settings whose
    value changes count, so a client that saves a whole block, guarded settings unchanged, needs
    no more than the block's permission; nor does an empty value where there was none (a
    provider's settings made when it is first selected). This is the one place every write
    passes (block updates, discovery, import, rollback)."""
    missing: dict[Permission, list[str]] = {}
    for path in paths:
        needed = permission_to_change(path)
        if needed is None or (_empty(value_at(before, path)) and _empty(value_at(after, path))):
            continue
        if not context.allows(Permission(needed), tenant_id):
            missing.setdefault(Permission(needed), []).append(path)
    if not missing:
        return None
    permission = min(missing, key=lambda p: p.value)
    return Forbidden(permission, tenant_id, missing[permission])


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


async def _save(
    context: Context,
    current: TenantSettings,
    changed: TenantSettings,
    before: dict[str, Any],
    after: dict[str, Any],
    paths: list[str],
    blocks: list[SettingsBlock] | None,
    idempotency: Idempotency | None,
) -> TenantSettings | Conflict:
    return await context.repository.save(
        changed,
        base_version=current.version,
        actor=context.actor,
        changed_blocks=blocks_of(paths) if blocks is None else blocks,
        changed_paths=paths,
        audit=write_record(context, field_changes(before, after, paths)),
        idempotency=_stored_idempotency(context, idempotency),
    )
