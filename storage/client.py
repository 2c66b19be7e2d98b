"""The MongoDB client the gateway uses, configured the same way everywhere."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError


def connect(url: str, *, timeout_ms: int = 5000) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast (``timeout_ms``) instead of hanging when the server is away, and
    returns dates as aware UTC datetimes."""
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
        return str(error).split(",")[0].split("\n")[0]
    return None
