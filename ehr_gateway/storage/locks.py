"""Writes to one tenant from one process take turns, instead of colliding.

Writers in other processes still race; the version compare-and-set settles those."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from pymongo.errors import AutoReconnect, PyMongoError

from ehr_gateway.storage.client import is_unavailable, not_counted_against_deadline


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:  # nobody else holds or waits: forget the lock
                del self._waiters[key]
                del self._locks[key]


class WriteTurns:
    """Each tenant's writers in this process, one at a time.

    Waiting for a turn is not counted against the request's database deadline: each write ahead
    has its own deadline, and once one of them finds the database unreachable, those queued
    behind it are answered at once, as it was. So a stalled database holds no writer for more
    than one deadline, and a busy tenant's writers all get their turn."""

    def __init__(self) -> None:
        self._locks = KeyedLocks()
        # When a write to a tenant last found the database unreachable (time.monotonic()),
        # until one succeeds.
        self._unreachable_at: dict[str, float] = {}

    def hold(self, tenant_id: str) -> AbstractAsyncContextManager[None]:
        """The tenant's turn, for work that is not a client's write (repairs): no deadline
        exemption, no fail-fast."""
        return self._locks.hold(tenant_id)

    @asynccontextmanager
    async def turn(self, tenant_id: str) -> AsyncIterator[None]:
        queued_at = time.monotonic()
        hold = self._locks.hold(tenant_id)
        with not_counted_against_deadline():
            await hold.__aenter__()
        try:
            failed_at = self._unreachable_at.get(tenant_id)
            if failed_at is not None and failed_at >= queued_at:
                # Trying again would make each queued writer wait out the database timeout in
                # turn, the last one long past it.
                raise AutoReconnect("the database was unreachable for the write ahead of this one")
            try:
                yield
            except PyMongoError as error:
                if is_unavailable(error):
                    self._unreachable_at[tenant_id] = time.monotonic()
                raise
            self._unreachable_at.pop(tenant_id, None)
        except BaseException as error:
            if not await hold.__aexit__(type(error), error, error.__traceback__):
                raise
        else:
            await hold.__aexit__(None, None, None)
