"""What the gateway does by itself about writes the database did not finish.

A write stores its history entry (the commit point), then the audit entry, then the document.
When a step after the commit point fails (the disk filled up, the database went away) the version
is stored but the document stays a version behind with no audit entry: an orphaned history entry.
``Repairs`` rolls such entries forward in the background, with backoff, until the document and
the audit entry are there, rather than leaving that to the tenant's next writer. It learns of
orphans three ways:

- this process's own write failed after its commit point (at once);
- the change feed delivered a version another process wrote, and after a grace period the
  document is still behind it (that process died between its steps): one batched read of the
  documents' versions per tick covers every version announced meanwhile;
- at startup, the versions written in the last ``STARTUP_WINDOW`` are checked the same way (a
  replica that crashed mid-write and is restarted finds its own orphan).

An orphan older than the startup window whose tenant nobody writes and no feed announces is left
to the next writer, which rolls it forward before its own write, as before.

``WriteFailures`` keeps, for readiness, whether writes are being refused for space: from the
first refusal until a write, a roll-forward or a probe write succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass

from pymongo.errors import PyMongoError

from ehr_gateway.storage.client import error_summary, is_storage_full

logger = logging.getLogger("ehr_gateway.storage")
security_logger = logging.getLogger("ehr_gateway.security")

# The steps of a write, as logs name them.
INSERT_HISTORY = "insert history"
APPEND_AUDIT = "append audit entry"
REPLACE_DOCUMENT = "replace document"
ROLL_FORWARD = "roll forward"
PROBE = "probe write"

# A version another process wrote may have its document replaced this long after its history
# entry without anything being wrong: that writer is still at work.
GRACE_S = 5.0
# How far back a starting gateway looks for orphans, and at most how many of the newest versions
# written in that time it checks: every start reads them, and checks their tenants' documents.
STARTUP_WINDOW_S = 15 * 60
STARTUP_VERSIONS_MAX = 1_000
# Documents read at once to check versions that are due (one query each).
_CHECK_BATCH = 100
# At most this many versions waiting for their check; beyond, the oldest are dropped (their
# tenants' next writer still rolls them forward).
_WATCHED_MAX = 10_000
_TICK_S = 0.25
_BACKOFF_FIRST_S = 0.25
_BACKOFF_MAX_S = 10.0


class StorageFull(PyMongoError):
    """The database refused a write for lack of space. Names the write (step, tenant, version),
    never its content. ``stored``: False when the database refused the write itself, so nothing
    of it was stored; None when that cannot be told."""

    storage_full = True  # what storage.client.is_storage_full looks for

    def __init__(
        self, step: str, tenant_id: str, version: int, stored: bool | None, detail: str
    ) -> None:
        super().__init__(f"{step} of tenant {tenant_id} version {version}: {detail}")
        self.step = step
        self.tenant_id = tenant_id
        self.version = version
        self.stored = stored

    @property
    def client_message(self) -> str:
        if self.stored is False:
            outcome = "this write was not stored"
        else:
            outcome = (
                "this write may have been stored (read settingsHistory to find out whether "
                f"version {self.version} is there)"
            )
        return (
            f"the database has no space left: {outcome}. An operator must free space on the "
            "database's disk; until then writes are refused, and retrying will not help"
        )


class HistoryTampered(Exception):
    """The tenant's newest history entry does not verify (its hash, its MAC, or its link to the
    version before it): it was not written by a gateway holding the deployment's key. It is
    never applied to the document nor audited, and no write can follow it without making it
    current, so writes to the tenant are refused until an operator restores its history."""

    def __init__(self, tenant_id: str, version: int, fault: str, *, newest: bool = True) -> None:
        super().__init__(f"tenant {tenant_id}: history version {version} does not verify ({fault})")
        self.tenant_id = tenant_id
        self.version = version
        self.fault = fault
        # False for an older entry a rollback asked for: only that rollback is refused.
        self.newest = newest

    @property
    def client_message(self) -> str:
        consequence = (
            "writes to this tenant are refused until an operator restores its history"
            if self.newest
            else "it is neither shown nor rolled back to until an operator restores its history"
        )
        if self.fault == "UNCHAINED":
            # From before the chain, or stripped of it: only an operator can tell which.
            return (
                f"version {self.version} of tenant {self.tenant_id} carries no chain link: "
                f"{consequence}. If it was written before the history chain "
                "existed, an operator who has checked the tenant's history adopts it with "
                "`ehr-gateway chain-legacy-history --tenant` (see auditIntegrity)"
            )
        return (
            f"the history of tenant {self.tenant_id} does not verify at version {self.version}: "
            f"{consequence} (see auditIntegrity)"
        )


def log_failed_write(step: str, tenant_id: str, version: int, error: BaseException) -> None:
    """One line naming the write and the server's answer: never the document (a driver error's
    text carries the whole document that was written)."""
    logger.warning(
        "database write failed: %s of tenant %s version %s: %s",
        step, tenant_id, version, error_summary(error),
    )  # fmt: skip


class WriteFailures:
    """Whether the database is refusing writes for space, for /readyz and /metrics."""

    def __init__(self) -> None:
        self.refused_for_space = 0  # writes (and roll-forwards) refused, ever
        self.failing_since: float | None = None

    def refused(self) -> None:
        self.refused_for_space += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            logger.warning("writes failing: the database has no space left")

    def stored(self) -> None:
        if self.failing_since is not None:
            self.failing_since = None
            logger.warning("writes succeed again: the database has space")

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def problems(self) -> list[str]:
        return ["writes failing: storage full"] if self.failing else []


@dataclass
class _Orphan:
    version: int
    due: float
    delay: float = _BACKOFF_FIRST_S


class Repairs:
    """Rolls orphaned history entries forward, and probes whether writes succeed again."""

    def __init__(
        self,
        roll_forward: Callable[[str], Awaitable[int]],
        document_versions: Callable[[list[str]], Awaitable[dict[str, int]]],
        recent_versions: Callable[[float, int], Awaitable[dict[str, int]]],
        probe: Callable[[], Awaitable[None]],
        failures: WriteFailures,
    ) -> None:
        self._roll_forward = roll_forward
        self._document_versions = document_versions
        self._recent_versions = recent_versions
        self._probe = probe
        self._failures = failures
        self._orphans: dict[str, _Orphan] = {}
        # tenant: (newest version announced, when), oldest first.
        self._watched: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._probe_due = 0.0
        self._probe_delay = _BACKOFF_FIRST_S
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.rolled_forward = 0
        self.gave_up = 0  # orphans not rolled forward because their entry did not verify

    def orphaned(self, tenant_id: str, version: int) -> None:
        """This process stored ``version``'s history entry but not the rest of the write."""
        known = self._orphans.get(tenant_id)
        if known is None or known.version < version:
            self._orphans[tenant_id] = _Orphan(version, time.monotonic())
        self._wake.set()

    def is_orphaned(self, tenant_id: str) -> bool:
        return tenant_id in self._orphans

    def repaired(self, tenant_id: str, version: int) -> None:
        """The document is at ``version`` (a writer rolled it forward)."""
        known = self._orphans.get(tenant_id)
        if known is not None and known.version <= version:
            del self._orphans[tenant_id]
            self.rolled_forward += 1

    def announced(self, tenant_id: str, version: int, at: float | None = None) -> None:
        """The change feed delivered ``version``, written by another process: check after the
        grace period that its document followed."""
        self._watched[tenant_id] = (version, time.monotonic() if at is None else at)
        self._watched.move_to_end(tenant_id)
        if len(self._watched) > _WATCHED_MAX:
            self._watched.popitem(last=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ehr-gateway write repairs")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # The driver sometimes swallows a cancellation that lands inside a database call (the
        # startup scan, a check): the loop also checks a flag, and is woken to see it.
        self._stopping = True
        self._wake.set()
        task.cancel()
        await asyncio.wait({task}, timeout=5)

    async def _run(self) -> None:
        try:
            recent = await self._recent_versions(STARTUP_WINDOW_S, STARTUP_VERSIONS_MAX)
        except PyMongoError as error:
            logger.warning("startup check for orphaned versions failed: %s", error_summary(error))
        else:
            for tenant_id, version in recent.items():
                self.announced(tenant_id, version, at=0.0)
        while not self._stopping:
            try:
                await self._tick()
            except PyMongoError as error:  # the database is away: the next tick tries again
                logger.warning("write repairs: %s", error_summary(error))
            except Exception:
                logger.exception("write repairs failed; trying again")
            if self._stopping:
                break
            self._wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK_S)

    async def _tick(self) -> None:
        now = time.monotonic()
        await self._check_watched(now)
        for tenant_id, orphan in list(self._orphans.items()):
            if orphan.due <= now:
                await self._repair(tenant_id, orphan)
        if self._failures.failing and not self._orphans and self._probe_due <= now:
            try:
                await self._probe()
            except PyMongoError as error:
                self._probe_delay = min(self._probe_delay * 2, _BACKOFF_MAX_S)
                self._probe_due = time.monotonic() + self._probe_delay
                logger.warning("%s failed: %s", PROBE, error_summary(error))
            else:
                self._probe_delay = _BACKOFF_FIRST_S
                self._failures.stored()

    async def _check_watched(self, now: float) -> None:
        # Oldest first: the first that is not yet due ends the batch.
        due: list[tuple[str, int]] = []
        for tenant_id, (version, at) in self._watched.items():
            if now - at < GRACE_S or len(due) == _CHECK_BATCH:
                break
            due.append((tenant_id, version))
        if not due:
            return
        documents = await self._document_versions([tenant_id for tenant_id, _ in due])
        for tenant_id, version in due:
            if self._watched.get(tenant_id, (None,))[0] == version:
                del self._watched[tenant_id]
            if documents.get(tenant_id, 0) < version:
                logger.warning(
                    "tenant %s: version %s is in history but its document is at %s; rolling "
                    "it forward", tenant_id, version, documents.get(tenant_id, 0),
                )  # fmt: skip
                self.orphaned(tenant_id, version)

    async def _repair(self, tenant_id: str, orphan: _Orphan) -> None:
        try:
            version = await self._roll_forward(tenant_id)
        except HistoryTampered:
            # Trying again cannot make it verify: the repository logged and counted it, and the
            # tenant's writers are refused until an operator restores its history.
            if self._orphans.get(tenant_id) is orphan:
                del self._orphans[tenant_id]
            self.gave_up += 1
            return
        except PyMongoError as error:
            log_failed_write(ROLL_FORWARD, tenant_id, orphan.version, error)
            if is_storage_full(error):
                self._failures.refused()
            orphan.delay = min(orphan.delay * 2, _BACKOFF_MAX_S)
            orphan.due = time.monotonic() + orphan.delay
            return
        logger.warning("tenant %s: rolled forward to version %s", tenant_id, version)
        self.repaired(tenant_id, version)
        self._failures.stored()
