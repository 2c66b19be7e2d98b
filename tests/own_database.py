"""A gateway configuration on a database of its own, dropped when the test ends: for tests that
leave data no other test's gateway may meet (a database writer's entries of other types). The
embedded server keeps every database a gateway watched open, at most 100 at a time; one dropped
is closed and forgotten, so a long session of such tests does not run into that cap."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pymongo import AsyncMongoClient

from ehr_gateway.server.config import GatewayConfig


@asynccontextmanager
async def own_database(database_url: str, data_dir: Path) -> AsyncIterator[GatewayConfig]:
    config = GatewayConfig(
        mongodb_url=database_url, database=f"own_{uuid.uuid4().hex[:12]}", data_dir=data_dir,
        public_base_url="https://gateway.example.test",
    )  # fmt: skip
    try:
        yield config
    finally:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(database_url)
        try:
            await client.drop_database(config.database)
        finally:
            await client.close()
