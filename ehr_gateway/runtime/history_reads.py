"""Subscriptions' reads of history (a replay from sinceVersion, or a follower filling a gap),
bounded so that subscribers that stop reading cannot pile up memory or load the database."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

from ehr_gateway.storage.client import DeadlineExceeded, database_deadline, time_left
from ehr_gateway.storage.repository import HistoryEntry, SettingsRepository

# Versions read from history at a time. The follower reads the next page only once the last
# version of this one has been sent, so a subscriber that stops reading holds one page at most,
# and a long history of large versions is never in memory whole.
HISTORY_PAGE = 10
# Pages the process reads at once, whichever connections they serve: others wait their turn,
# and the database keeps room for everyone else's reads.
CONCURRENT_HISTORY_READS = 4
# Subscriptions of one connection reading history at once (its others wait their turn): many
# replays on a connection that stops reading would each hold a page.
HISTORY_READS_PER_CONNECTION = 2


class HistoryReads:
    """The process's bound on subscriptions' history reads, and how many pages they have read
    (a metric: a subscriber that has gone away reads no more)."""

    def __init__(
        self, concurrent: int = CONCURRENT_HISTORY_READS, *, deadline_s: float | None = None
    ) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self.pages = 0
        # Each read a subscription makes (where it starts, a page, its wait for a slot) has a
        # deadline of its own (EHRGW_DB_TIMEOUT_MS): a subscription lives as long as its client,
        # so no one deadline covers it, but no read of it may hold a slot for longer.
        self.deadline_s = deadline_s

    def deadline(self) -> AbstractContextManager[None]:
        """The deadline of one read."""
        return database_deadline(self.deadline_s)

    async def page(
        self, repository: SettingsRepository, tenant_id: str, after: int, before: int
    ) -> tuple[list[HistoryEntry], int | None]:
        """Up to HISTORY_PAGE versions after ``after`` and before ``before``, oldest first, and
        the last version read (SettingsRepository.versions_page): those that do not verify are
        left out, so a page may be empty with versions after it.

        A cancellation landing inside a driver call can wedge the driver's connection, so the
        read runs to its end in a task of its own, and holds its slot until then; the caller
        still sees its cancellation. One cancelled while waiting for a slot reads nothing."""
        with self.deadline():
            try:
                async with asyncio.timeout(time_left()):
                    await self._slots.acquire()
            except TimeoutError:
                raise DeadlineExceeded("the deadline passed waiting to read history") from None
            # The task takes the deadline with the rest of this context.
            read = asyncio.ensure_future(
                repository.versions_page(tenant_id, after, before=before, limit=HISTORY_PAGE)
            )
        read.add_done_callback(lambda _: self._slots.release())
        self.pages += 1
        try:
            return await asyncio.shield(read)
        except asyncio.CancelledError:
            # Swallow what it ends with: nobody waits for it any more.
            read.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise
