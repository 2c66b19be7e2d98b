"""The MongoDB client the gateway uses, configured the same way everywhere."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError


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
