"""Following a tenant's settings: history first (from sinceVersion), then live versions, with
no gap and no duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import TypeVar

from ehr_gateway.ehr.errors import FieldError
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.runtime.broker import Delivery, Subscription
from ehr_gateway.storage.repository import HistoryEntry

MAX_TENANTS_PER_SUBSCRIPTION = 1000
T = TypeVar("T")


async def _uncancelled(operation: Awaitable[T]) -> T:
    """Await a database operation that a cancellation must not cut short.

    A client that ends an operation as it starts cancels its task; a cancellation landing inside
    a driver call can leave the driver's connection state wedged, and the change feed, on the
    same client, then waits for ever. The operation runs to its end in a task of its own; the
    caller still sees its cancellation, once the operation is no longer mid-flight."""
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Let it finish, and swallow what it ends with: nobody waits for it any more.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise


def _check_cancelled() -> None:
    """Re-raise a cancellation the database driver swallowed.

    A client that ends an operation cancels its task; when the cancellation lands inside a
    database call the driver sometimes absorbs it, and the operation would run on, unseen,
    holding its subscription. The task still records the request, so honour it here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SubscriptionRefused(Exception):
    """The subscription cannot start; ``error`` says which argument and why."""

    def __init__(self, path: tuple[str, ...], code: str, message: str) -> None:
        super().__init__(message)
        self.error = FieldError(path, code, message)


async def open_changes(
    context: Context,
    tenant_ids: Sequence[str] | None,
    since_version: int | None,
    *,
    argument: str,
) -> AsyncIterator[Delivery]:
    """Validate the request and start following; raises SubscriptionRefused.

    With one tenant and ``since_version`` n, every version after n comes first, in order; then
    live versions, every one of them: when this subscriber falls too far behind for its queue,
    it reads what it missed from history rather than skip it. Without ``since_version``, only
    versions after the current one, and a subscriber that falls behind skips to the newest
    (flagged). ``tenant_ids`` None follows every tenant the caller may act on. ``argument``
    names the tenant argument in refusals."""
    principal = context.principal
    if tenant_ids is None and principal is not None and principal.tenants is not None:
        # A wildcard only ever carries the caller's own tenants.
        tenant_ids = sorted(t for t in principal.tenants if check_tenant_id(t) is None)
    elif tenant_ids is not None:
        if len(tenant_ids) > MAX_TENANTS_PER_SUBSCRIPTION:
            raise SubscriptionRefused(
                (argument,), "TOO_MANY", f"at most {MAX_TENANTS_PER_SUBSCRIPTION} tenants"
            )
        for tenant_id in tenant_ids:
            refused = check_tenant_id(tenant_id)
            if refused:
                error = refused.errors[0]
                raise SubscriptionRefused((argument,), error.code, error.message)
    followed = 0 if tenant_ids is None else len(tenant_ids)
    budget = context.followed_tenants
    if not budget.take(followed):
        raise SubscriptionRefused(
            (argument,),
            "TOO_MANY",
            f"at most {budget.limit} tenants followed at once on one connection "
            f"({budget.count} already)",
        )
    # Subscribe before reading anything, so no version can fall between what is read and what
    # is streamed; the overlap is dropped below.
    subscription = context.broker.subscribe(tenant_ids)
    try:
        last: dict[str, int] = {}
        replay_until = 0
        if tenant_ids is not None and len(tenant_ids) == 1:
            last, replay_until = await _uncancelled(
                _starting_point(context, tenant_ids[0], since_version)
            )
        _check_cancelled()
    except BaseException:
        context.broker.unsubscribe(subscription)
        budget.give_back(followed)
        raise
    return _follow(
        context,
        subscription,
        last,
        replay_until,
        every_version=since_version is not None,
        followed=followed,
    )


async def _starting_point(
    context: Context, tenant_id: str, since_version: int | None
) -> tuple[dict[str, int], int]:
    """The version to follow from, and the current version (to replay up to)."""
    with context.history_reads.deadline():
        current = await context.repository.get(tenant_id)
    if current is None:
        # A client that has nothing yet (sinceVersion 0) may wait for the first version: a page
        # open on a new tenant learns of the EHR chosen elsewhere. Without sinceVersion there is
        # no current version to follow from.
        if since_version == 0:
            return {tenant_id: 0}, 0
        raise SubscriptionRefused(("tenantId",), "NOT_FOUND", "no settings exist for this tenant")
    if since_version is None:
        return {tenant_id: current.version}, 0
    if not 0 <= since_version <= current.version:
        raise SubscriptionRefused(
            ("sinceVersion",),
            "OUT_OF_RANGE",
            f"must be between 0 and the current version, {current.version}",
        )
    return {tenant_id: since_version}, current.version


async def _follow(
    context: Context,
    subscription: Subscription,
    last: dict[str, int],
    replay_until: int,
    *,
    every_version: bool,
    followed: int,
) -> AsyncIterator[Delivery]:
    try:
        for tenant_id, start in list(last.items()):
            if start < replay_until:
                async for replayed in _versions_between(
                    context, tenant_id, start, replay_until + 1
                ):
                    last[tenant_id] = replayed.version
                    yield Delivery(replayed)
        while (delivery := await subscription.next()) is not None:
            _check_cancelled()
            entry = delivery.entry
            seen = last.get(entry.tenant_id)
            if seen is not None and entry.version <= seen:
                continue  # already delivered (from history, or twice by the feed)
            if (
                seen is not None
                and entry.version > seen + 1
                and (every_version or not delivery.versions_skipped)
            ):
                # The feed lost versions (a reconnect), or this subscriber's queue dropped them
                # while it was behind and it asked for every one: fetch them, in order. (A
                # subscriber that did not ask gets the newest version, flagged.)
                async for missed in _versions_between(
                    context, entry.tenant_id, seen, entry.version
                ):
                    yield Delivery(missed)
                delivery = Delivery(entry)
            last[entry.tenant_id] = entry.version
            yield delivery
    finally:
        context.broker.unsubscribe(subscription)
        context.followed_tenants.give_back(followed)


async def _versions_between(
    context: Context, tenant_id: str, after: int, before: int
) -> AsyncIterator[HistoryEntry]:
    """The tenant's stored versions after ``after`` and before ``before``, oldest first, a page
    at a time, each page read once the one before it has been taken."""
    async with context.history_slots:
        while after + 1 < before:
            page, last_read = await context.history_reads.page(
                context.repository, tenant_id, after, before
            )
            _check_cancelled()
            if last_read is None:
                return
            for entry in page:
                yield entry
            # After the last version read, not the last served: a page of versions that did
            # not verify (left out) is empty, and the versions after it still come.
            after = last_read
