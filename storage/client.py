"""The MongoDB client the gateway uses, configured the same way everywhere."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient


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
