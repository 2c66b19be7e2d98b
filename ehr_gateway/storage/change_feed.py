"""The change feed: one MongoDB change stream per gateway process over the settings history.

Every stored version inserts exactly one history entry, so the stream of history inserts is the
stream of versions, whichever replica wrote them. The feed hands each entry to ``publish``.

When the stream breaks (the database restarted, the network blipped) the feed reopens it from its
last resume token. A token can outlive what the server keeps (a real MongoDB's oplog rolls over;
the embedded server keeps a bounded change log and loses its triggers while it is down), so after
every reconnect the feed also re-reads the history written since shortly before the break and
publishes it again: subscribers drop versions they already have, and nothing is missed.

Every read the feed makes has a deadline, and a watchdog guards the stream besides: a poll that
has not come back within ``stall_s`` (a connection that stopped answering, or a driver call that
a cancellation left stuck) marks the feed down at once, so that the read caches stop serving and
/healthz and the metrics say so, and the feed is started afresh from its last token, catching up
as after any other break. A feed that says it runs is one whose polls come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pymongo.errors import PyMongoError

from ehr_gateway.storage.client import ServerOutages, database_deadline
from ehr_gateway.storage.repository import WATCH_AWAIT_MS, HistoryEntry, SettingsRepository

logger = logging.getLogger("ehr_gateway.change_feed")

# A real MongoDB holds an empty getMore open until a change arrives (up to maxAwaitTimeMS); a
# server that answers at once is asked again after this pause, which bounds the added latency.
IDLE_POLL = 0.02
# How long a server may hold an empty poll open (the stream's maxAwaitTimeMS).
AWAIT_S = WATCH_AWAIT_MS / 1000
# How far before a break the catch-up re-reads history.
CLOCK_SKEW = timedelta(seconds=5)
# How long closing a stream may take: its cursor's goodbye goes to a server that may not answer.
CLOSE_WITHIN = 1.0


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
        read_s: float = 5.0,
        stall_s: float = 10.0,
    ) -> None:
        """``outages``: the listener given to the repository's client (storage.client.connect),
        so that the feed learns of a database that went away and came back at once, which the
        driver hides by resuming the stream itself. ``read_s``: the deadline of each of the
        feed's database reads. ``stall_s``: the longest a poll may stay out before the watchdog
        declares the feed down and starts it again."""
        self._repository = repository
        self._outages = outages or ServerOutages()
        self._publish = publish
        # Told, for each version as it streams in, the seconds since it was committed.
        self._observe_lag = observe_lag
        self._retry_max = retry_max
        self._token: Mapping[str, Any] | None = None
        self._broke_at: datetime | None = None
        self._stopping = False
        self._read_s = read_s
        self._stall_s = stall_s
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # Bumped each time the watchdog gives up on a run: a run it left behind (stuck in a call
        # that ignored its cancellation) must neither publish nor say the feed runs if it wakes.
        self._generation = 0
        # When the outstanding poll was sent (monotonic, and wall clock for the catch-up);
        # None while no poll is out.
        self._polling_since: float | None = None
        self._polling_at: datetime | None = None
        self.running = asyncio.Event()  # set while the stream is open and its polls come back
        self.reconnects = 0

    def start(self) -> None:
        self._task = self._spawn()
        self._watchdog = asyncio.create_task(self._watch(), name="ehr-gateway change feed watchdog")

    def _spawn(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._run(self._generation), name="ehr-gateway change feed")

    async def stop(self) -> None:
        if self._task is None:
            return
        # The driver sometimes swallows a cancellation that lands inside a database call, so the
        # loop also checks a flag, and the wait is bounded.
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=5)
        if not done:
            logger.warning("the change feed did not stop within 5 s")
        self._task = None
        self.running.clear()

    async def _watch(self) -> None:
        """Declare the feed down when a poll stays out longer than ``stall_s``, and start it
        again: the run is cancelled and, should it not end, left behind (its generation is
        past, so it can no longer publish)."""
        tick = min(1.0, self._stall_s / 4)
        while not self._stopping:
            await asyncio.sleep(tick)
            since = self._polling_since
            if since is None or time.monotonic() - since <= self._stall_s:
                continue
            self.reconnects += 1
            self.running.clear()
            self._note_break(self._polling_at or datetime.now(UTC))
            logger.warning(
                "change feed stalled: no answer from the database for %.0f s; reopening",
                self._stall_s,
            )
            self._generation += 1
            self._polling_since = self._polling_at = None
            stuck = self._task
            if stuck is not None:
                stuck.cancel()
            self._task = self._spawn()

    def _note_break(self, moment: datetime) -> None:
        if self._broke_at is None or moment < self._broke_at:
            self._broke_at = moment

    async def _read(self, call: Callable[[], Any], *, waits: float = 0.0) -> Any:
        """One of the feed's database calls, under its deadline (plus ``waits``, what the
        server may hold it open for), watched by the watchdog."""
        asked = self._polling_since = time.monotonic()
        self._polling_at = datetime.now(UTC)
        try:
            with database_deadline(self._read_s + waits):
                return await call()
        finally:
            if self._polling_since == asked:  # not a newer run's poll, when this one was left
                self._polling_since = self._polling_at = None

    async def _run(self, generation: int) -> None:
        delay = 0.05

        def current() -> bool:
            return not self._stopping and generation == self._generation

        while current():
            stream: Any = None
            try:
                stream = await self._read(lambda: self._repository.watch_history(self._token))
                outages = self._outages.count
                if not current():
                    return
                if self._broke_at is not None:
                    broke_at = self._broke_at
                    await self._catch_up(broke_at, current)
                    if not current():
                        return
                    if self._broke_at == broke_at:
                        self._broke_at = None
                self.running.set()
                delay = 0.05
                while current():
                    asked = time.monotonic()
                    change = await self._read(stream.try_next, waits=AWAIT_S)
                    if not current():
                        return
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
                    entry_id = change["documentKey"]["_id"]
                    entry = await self._read(
                        partial(self._repository.history_entry_by_id, entry_id)
                    )
                    if not current():
                        return
                    if entry is not None:
                        if self._observe_lag is not None:
                            lag = datetime.now(UTC) - entry.changed_at
                            self._observe_lag(lag.total_seconds())
                        self._deliver(entry)
                    self._token = stream.resume_token
            except (PyMongoError, KeyError, ValueError, DatabaseWentAway) as error:
                if not current():
                    return
                self.running.clear()
                self.reconnects += 1
                self._note_break(datetime.now(UTC))
                if isinstance(error, DatabaseWentAway):
                    self._note_break(self._outages.last_at)
                logger.warning("change feed interrupted (%s); reconnecting", type(error).__name__)
                await self._close(stream)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
            finally:
                if stream is not None and not current():
                    await self._close(stream)

    @staticmethod
    async def _close(stream: Any) -> None:
        """Close a stream, within CLOSE_WITHIN: its cursor's goodbye may go unanswered."""
        if stream is None:
            return
        with contextlib.suppress(PyMongoError, TimeoutError):
            async with asyncio.timeout(CLOSE_WITHIN):
                await stream.close()

    def _deliver(self, entry: HistoryEntry) -> None:
        try:
            self._publish(entry)
        except Exception:  # a broken subscriber must not stop the feed
            logger.exception("publishing version %s of %s failed", entry.version, entry.tenant_id)

    async def _catch_up(self, broke_at: datetime, current: Callable[[], bool]) -> None:
        """Publish what was written since shortly before the stream broke. The margin covers
        other replicas' clocks and events that were committed but not yet streamed."""
        entries = await self._read(lambda: self._repository.changes_since(broke_at - CLOCK_SKEW))
        for entry in entries:
            if not current():
                return
            self._deliver(entry)
