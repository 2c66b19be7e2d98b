"""The change feed: one MongoDB change stream per gateway process over the settings history.

Every stored version inserts exactly one history entry, so the stream of history inserts is the
stream of versions, whichever replica wrote them. The feed hands each entry to ``publish``.

When the stream breaks (the database restarted, the network blipped) the feed reopens it from its
last resume token. A token can outlive what the server keeps (a real MongoDB's oplog rolls over;
the embedded server keeps a bounded change log and loses its triggers while it is down), so after
every reconnect the feed also re-reads the history written since shortly before the break and
publishes it again: subscribers drop versions they already have, and nothing is missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from ehr_gateway.storage.client import ServerOutages
from ehr_gateway.storage.repository import HistoryEntry, SettingsRepository

logger = logging.getLogger("ehr_gateway.change_feed")

# A real MongoDB holds an empty getMore open until a change arrives (up to maxAwaitTimeMS); a
# server that answers at once is asked again after this pause, which bounds the added latency.
IDLE_POLL = 0.02
# How far before a break the catch-up re-reads history.
CLOCK_SKEW = timedelta(seconds=5)


class DatabaseWentAway(Exception):
    """The database was seen going away while the stream went on."""


class ChangeFeed:
    def __init__(
        self,
        repository: SettingsRepository,
        publish: Callable[[HistoryEntry], None],
        *,
        retry_max: float = 2.0,
        observe_lag: Callable[[float], None] | None = None,
        outages: ServerOutages | None = None,
    ) -> None:
        """``outages``: the listener given to the repository's client (storage.client.connect),
        so that the feed learns of a database that went away and came back at once, which the
        driver hides by resuming the stream itself."""
        self._repository = repository
        self._outages = outages or ServerOutages()
        self._publish = publish
        # Told, for each version as it streams in, the seconds since it was committed.
        self._observe_lag = observe_lag
        self._retry_max = retry_max
        self._token: Mapping[str, Any] | None = None
        self._broke_at: datetime | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.running = asyncio.Event()  # set while the stream is open
        self.reconnects = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ehr-gateway change feed")

    async def stop(self) -> None:
        if self._task is None:
            return
        # The driver sometimes swallows a cancellation that lands inside a database call, so the
        # loop also checks a flag, and the wait is bounded.
        self._stopping = True
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=5)
        if not done:
            logger.warning("the change feed did not stop within 5 s")
        self._task = None
        self.running.clear()

    async def _run(self) -> None:
        delay = 0.05
        while not self._stopping:
            try:
                async with await self._repository.watch_history(self._token) as stream:
                    outages = self._outages.count
                    self.running.set()
                    if self._broke_at is not None:
                        await self._catch_up(self._broke_at)
                        self._broke_at = None
                    delay = 0.05
                    while not self._stopping:
                        asked = time.monotonic()
                        change = await stream.try_next()
                        if self._outages.count != outages:
                            # Reopened, then caught up from history, like any other break.
                            raise DatabaseWentAway
                        if change is None:
                            self._token = stream.resume_token
                            if time.monotonic() - asked < IDLE_POLL:
                                # The server answered at once instead of waiting for a change
                                # (the embedded one does): pause rather than spin.
                                await asyncio.sleep(IDLE_POLL)
                            continue
                        # Read the entry back rather than trust the event's copy of it: servers
                        # differ in how faithfully they render documents inside change events.
                        entry = await self._repository.history_entry_by_id(
                            change["documentKey"]["_id"]
                        )
                        if entry is not None:
                            if self._observe_lag is not None:
                                lag = datetime.now(UTC) - entry.changed_at
                                self._observe_lag(lag.total_seconds())
                            self._deliver(entry)
                        self._token = stream.resume_token
            except (PyMongoError, KeyError, ValueError, DatabaseWentAway) as error:
                if self._stopping:
                    return
                self.running.clear()
                self.reconnects += 1
                if self._broke_at is None:
                    self._broke_at = datetime.now(UTC)
                    if isinstance(error, DatabaseWentAway):
                        self._broke_at = min(self._broke_at, self._outages.last_at)
                logger.warning("change feed interrupted (%s); reconnecting", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    def _deliver(self, entry: HistoryEntry) -> None:
        try:
            self._publish(entry)
        except Exception:  # a broken subscriber must not stop the feed
            logger.exception("publishing version %s of %s failed", entry.version, entry.tenant_id)

    async def _catch_up(self, broke_at: datetime) -> None:
        """Publish what was written since shortly before the stream broke. The margin covers
        other replicas' clocks and events that were committed but not yet streamed."""
        for entry in await self._repository.changes_since(broke_at - CLOCK_SKEW):
            self._deliver(entry)
