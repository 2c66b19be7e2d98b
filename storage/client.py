"""The MongoDB client the gateway uses, configured the same way everywhere."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError


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


def connect(url: str, *, timeout_ms: int = 5000) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast (``timeout_ms``) instead of hanging when the server is away, and
    returns dates as aware UTC datetimes."""
    logging.getLogger("pymongo.client").addFilter(_OUTAGE_IN_ONE_LINE)  # once: same filter
    return AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 2,
        appname="ehr-gateway",
    )


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` means the database cannot be reached right now (worth a retry), as
    opposed to a fault in what was asked of it."""
    if isinstance(error, ConnectionFailure):  # includes timeouts and server selection
        return True
    return isinstance(error, PyMongoError) and error.has_error_label("RetryableWriteError")


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> str | None:
    """None when the database answers; otherwise why not (one line)."""
    try:
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
