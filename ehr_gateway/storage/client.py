"""The MongoDB client the gateway uses, configured the same way everywhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, _csot, monitoring
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError
from pymongo.server_type import SERVER_TYPE


class _OutageInOneLine(logging.Filter):
    """The driver logs a traceback, as an error, when one of its background tasks cannot reach
    the server (closing the cursor of a change stream that an outage broke, say). That is the
    outage itself, which the gateway already reports: one warning line is enough, and a
    traceback in the log stays the sign of something unexpected."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if is_unavailable(error):
            record.msg = f"{record.getMessage()} {reason(error)}"
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_OUTAGE_IN_ONE_LINE = _OutageInOneLine()


class ServerOutages(monitoring.ServerListener):
    """Counts the times a client saw a database server go away (its description turned Unknown,
    as the driver marks it on a network error). The driver resumes a change stream once by
    itself after such an error: when the server came back at once (a supervised embedded server
    restarts within a second) the stream goes on over a server that may have lost the versions
    written meanwhile, and the change feed would never learn of the break. It learns of it here."""

    def __init__(self) -> None:
        self.count = 0
        self.last_at = datetime.now(UTC)

    def opened(self, event: monitoring.ServerOpeningEvent) -> None:
        pass

    def closed(self, event: monitoring.ServerClosedEvent) -> None:
        pass

    def description_changed(self, event: monitoring.ServerDescriptionChangedEvent) -> None:
        gone = event.new_description.server_type == SERVER_TYPE.Unknown
        if gone and event.previous_description.server_type != SERVER_TYPE.Unknown:
            self.last_at = datetime.now(UTC)
            self.count += 1


def connect(
    url: str, *, timeout_ms: int = 5000, outages: ServerOutages | None = None
) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast (``timeout_ms``) instead of hanging when the server is away, and
    returns dates as aware UTC datetimes; ``outages`` is told when a server goes away."""
    logging.getLogger("pymongo.client").addFilter(_OUTAGE_IN_ONE_LINE)  # once: same filter
    return AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 2,
        appname="ehr-gateway",
        event_listeners=[outages] if outages is not None else [],
    )


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` means the database cannot be reached right now (worth a retry), as
    opposed to a fault in what was asked of it. A deadline that ran out counts: whichever of
    the driver's timeouts it surfaced as (no server selected, a socket read cut short, or the
    operation refused before it was sent, ExecutionTimeout, which is an OperationFailure)."""
    if isinstance(error, ConnectionFailure):  # includes timeouts and server selection
        return True
    if isinstance(error, PyMongoError) and error.timeout:
        return True
    return isinstance(error, PyMongoError) and error.has_error_label("RetryableWriteError")


class DeadlineExceeded(PyMongoError):
    """The request's deadline passed while it waited its turn for the database (a queued
    writer, a batched command): answered as the database being unavailable."""

    @property
    def timeout(self) -> bool:
        return True


# When the current request's database deadline falls (time.monotonic()), for code that waits on
# something other than a driver call (a lock, another task's command). The driver keeps its own.
_DEADLINE: ContextVar[float | None] = ContextVar("ehr_gateway_database_deadline", default=None)


class database_deadline:  # lower case: a context manager used as the function it was
    """Every database call made inside, in this task and the tasks it starts, shares one
    deadline ``seconds`` from now (PyMongo's client-side operation timeout): a request that
    makes five calls waits for the database no longer than one that makes one. None: no
    deadline of its own. Nested deadlines only ever shorten the outer one.

    A class rather than a generator-based context manager: every request enters one, and the
    generator's frame, its wrapper and their calls cost about as much as the deadline itself."""

    __slots__ = ("_seconds", "_timeout", "_token")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds

    def __enter__(self) -> None:
        seconds = self._seconds
        if seconds is None:
            return
        at = time.monotonic() + seconds
        outer = _DEADLINE.get()
        self._token = _DEADLINE.set(at if outer is None else min(outer, at))
        try:
            self._timeout = pymongo.timeout(seconds)
            self._timeout.__enter__()
        except BaseException:
            _DEADLINE.reset(self._token)
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._seconds is None:
            return
        try:
            self._timeout.__exit__(kind, error, traceback)
        finally:
            _DEADLINE.reset(self._token)


def deadline_at() -> float | None:
    """The current deadline (time.monotonic()), None outside one."""
    return _DEADLINE.get()


def time_left() -> float | None:
    """Seconds left until the current deadline (0 once past), None outside one."""
    at = _DEADLINE.get()
    return None if at is None else max(0.0, at - time.monotonic())


@contextmanager
def not_counted_against_deadline() -> Iterator[None]:
    """A phase of a request that does not wait on the database (an outbound HTTP call, bounded
    by EHRGW_OUTBOUND_TIMEOUT_S): its time is added back to the database deadline, so that a
    slow EHR server does not leave the writes that follow it without time. PyMongo has no
    public way to move a deadline on; its context variable is moved with ours."""
    started = time.monotonic()
    try:
        yield
    finally:
        at = _DEADLINE.get()
        if at is not None:
            spent = time.monotonic() - started
            _DEADLINE.set(at + spent)
            if _csot.get_timeout():
                _csot.DEADLINE.set(_csot.get_deadline() + spent)


async def ping(
    client: AsyncMongoClient[dict[str, Any]], *, within: float | None = None
) -> str | None:
    """None when the database answers (within ``within`` seconds, when given); otherwise why
    not (one line)."""
    try:
        with database_deadline(within):
            await client.admin.command("ping")
    except PyMongoError as error:
        return reason(error)
    return None


def reason(error: BaseException | None) -> str:
    """The first line of a driver error, without the topology description that follows."""
    return str(error).split(",")[0].split("\n")[0]


# MongoDB's OutOfDiskSpace.
_OUT_OF_DISK_SPACE = 14031
# What servers say when the disk is full: SQLite (the embedded server, as write error code 8),
# the operating system (WiredTiger passes ENOSPC on), and MongoDB's own disk space monitor.
_FULL_MESSAGES = ("database or disk is full", "no space left on device", "out of disk space")


def _server_message(error: PyMongoError) -> str:
    """The server's own message, without the driver's rendering of the command (which, for a
    write, holds the document written)."""
    details = error.details if isinstance(error, OperationFailure) else None
    if isinstance(details, dict) and isinstance(details.get("errmsg"), str):
        return str(details["errmsg"])
    return reason(error)


def _refused_for_space(code: Any, message: str) -> bool:
    lowered = message.lower()
    return code == _OUT_OF_DISK_SPACE or any(text in lowered for text in _FULL_MESSAGES)


def is_storage_full(error: BaseException | None) -> bool:
    """Whether ``error`` means the database refused a write for lack of space (which only an
    operator can give it back), as opposed to being away or refusing what was asked."""
    if getattr(error, "storage_full", False):
        return True
    if isinstance(error, BulkWriteError):
        details: Any = error.details
        return any(
            _refused_for_space(failed.get("code"), str(failed.get("errmsg", "")))
            for failed in details.get("writeErrors", [])
        )
    if isinstance(error, OperationFailure):
        return _refused_for_space(error.code, _server_message(error))
    return False


def error_summary(error: BaseException) -> str:
    """A database error in one line for the log: its kind, the server's code and message; never
    the command or document the driver adds to its text."""
    if isinstance(error, BulkWriteError):
        details: Any = error.details
        failed = details.get("writeErrors") or [{}]
        first = failed[0]
        return (
            f"BulkWriteError: {len(failed)} write error(s), first code {first.get('code')}: "
            f"{str(first.get('errmsg', ''))[:200]}"
        )
    if isinstance(error, OperationFailure):
        return f"{type(error).__name__}: code {error.code}: {_server_message(error)[:200]}"
    return f"{type(error).__name__}: {reason(error)[:200]}"
