"""The one way settings are written: read, change, validate, compare-and-set, with history."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from pymongo.errors import AutoReconnect, PyMongoError

from ehr.blocks import TenantSettings, permission_to_change
from ehr.changes import blocks_of, changed_paths, field_changes, settings_tree, value_at
from ehr.common import SettingsBlock
from resolvers.access import Forbidden, Permission
from resolvers.audit import write_record
from resolvers.context import Context
from resolvers.outcomes import Conflict, Failed, Outcome, Saved
from resolvers.tenants import check_tenant_id as check_tenant_id  # re-exported: imported from here
from storage.client import DeadlineExceeded, is_unavailable, time_left
from storage.secrets import stored_secrets

# Without expectedVersion a write applies to whatever version is current; it is retried this
# many times if other writers keep moving the version under it.
_UNCONDITIONAL_ATTEMPTS = 8

Change = Callable[[TenantSettings], TenantSettings | Failed]


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
    repository = context.repository
    queued_at = time.monotonic()
    async with _in_turn(repository.tenant_locks.hold(tenant_id)):
        failed_at = repository.unreachable_on_write.get(tenant_id)
        if failed_at is not None and failed_at >= queued_at:
            # The write ahead of this one found the database unreachable while this one waited
            # its turn. Trying again would make each queued writer wait out the database
            # timeout in turn, the last one long past it: answer now, as that write was.
            raise AutoReconnect("the database was unreachable for the write ahead of this one")
        try:
            outcome = await _write_in_turn(context, tenant_id, expected_version, blocks, change)
        except PyMongoError as error:
            if is_unavailable(error):
                repository.unreachable_on_write[tenant_id] = time.monotonic()
            raise
        repository.unreachable_on_write.pop(tenant_id, None)
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


@asynccontextmanager
async def _in_turn(hold: AbstractAsyncContextManager[None]) -> AsyncIterator[None]:
    """The tenant's lock, waited for within the request's deadline: a writer queued behind
    others answers when its own time is up, not when theirs is."""
    left = time_left()
    try:
        async with asyncio.timeout(left):
            await hold.__aenter__()
    except TimeoutError:
        raise DeadlineExceeded("the deadline passed while the write waited its turn") from None
    try:
        yield
    except BaseException as error:
        if not await hold.__aexit__(type(error), error, error.__traceback__):
            raise
    else:
        await hold.__aexit__(None, None, None)


async def _write_in_turn(
    context: Context,
    tenant_id: str,
    expected_version: int | None,
    blocks: list[SettingsBlock] | None,
    change: Change,
) -> Outcome:
    """``write``, holding the tenant's lock."""
    cached = context.settings_cache.write_base(tenant_id)
    if cached is not None:
        outcome = await _save_from(context, cached, expected_version, blocks, change)
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
            return Conflict(current.version)
        changed = change(current)
        if isinstance(changed, Failed):
            return changed
        before, after = settings_tree(current), settings_tree(changed)
        paths = changed_paths(before, after)
        if not paths:
            return Saved(current)
        refused = _refusal(context, tenant_id, before, after, paths)
        if refused is not None:
            raise refused
        saved = await _save(context, current, changed, before, after, paths, blocks)
        if isinstance(saved, TenantSettings):
            return Saved(saved)
        conflict = saved
        if expected_version is not None:
            return conflict
    return conflict


async def _save_from(
    context: Context,
    cached: TenantSettings,
    expected_version: int | None,
    blocks: list[SettingsBlock] | None,
    change: Change,
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
    saved = await _save(context, cached, changed, before, after, paths, blocks)
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
) -> TenantSettings | Conflict:
    return await context.repository.save(
        changed,
        base_version=current.version,
        actor=context.actor,
        changed_blocks=blocks_of(paths) if blocks is None else blocks,
        changed_paths=paths,
        audit=write_record(context, field_changes(before, after, paths)),
    )
