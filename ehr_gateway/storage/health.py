"""What the gateway knows of its database's health, kept up to date in the background, so that a
readiness probe answers from it at once instead of making a round trip that can hang (a stalled
server holds a ping until the driver gives up).

A task pings the database every ``interval`` seconds; a ping not answered within ``timeout``
counts as unreachable. Requests report what they meet as well: a request that found the database
unreachable marks it so before the next ping does. (Writes the database refuses while it answers,
for space, are kept by the repository: storage.repair.WriteFailures.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pymongo import AsyncMongoClient

from ehr_gateway.storage.client import ping

logger = logging.getLogger("ehr_gateway.health")


class DatabaseHealth:
    def __init__(self, *, interval: float = 1.0, timeout: float = 1.0) -> None:
        self.interval = interval
        self.timeout = timeout
        self.reachable = False  # until the first ping, or a request, says otherwise
        self.unreachable_reason: str | None = "not checked yet"
        self.changed_at = time.monotonic()
        self.probes = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    def note_reachable(self) -> None:
        if not self.reachable:
            logger.info("database reachable")
            self.changed_at = time.monotonic()
        self.reachable = True
        self.unreachable_reason = None

    def note_unreachable(self, reason: str) -> None:
        """The database did not answer (``reason``: one line, for the log only: it may name the
        database's address)."""
        if self.reachable:
            logger.warning("database unreachable: %s", reason)
            self.changed_at = time.monotonic()
        self.reachable = False
        self.unreachable_reason = reason

    def problems(self) -> list[str]:
        """What keeps the gateway from serving, as /readyz lists it."""
        return [] if self.reachable else ["database unreachable"]

    def start(self, client: AsyncMongoClient[dict[str, Any]]) -> None:
        self._stopped.clear()
        self._task = asyncio.create_task(self._watch(client), name="ehr-gateway database health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # The driver sometimes swallows a cancellation that lands inside the ping: the loop
            # also waits on this event between pings, so it stops then.
            self._stopped.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=self.timeout)

    async def check(self, client: AsyncMongoClient[dict[str, Any]]) -> None:
        """One ping, bounded by ``timeout`` (the driver's deadline, and ours in case a stalled
        server holds the driver past it)."""
        self.probes += 1
        try:
            async with asyncio.timeout(self.timeout + 0.5):
                unreachable = await ping(client, within=self.timeout)
        except TimeoutError:
            unreachable = f"no answer to a ping within {self.timeout:g}s"
        if unreachable is None:
            self.note_reachable()
        else:
            self.note_unreachable(unreachable)

    async def _watch(self, client: AsyncMongoClient[dict[str, Any]]) -> None:
        while not self._stopped.is_set():
            started = time.monotonic()
            await self.check(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopped.wait(), max(0.0, self.interval - (time.monotonic() - started))
                )
