"""Fixtures: one database server for the run (the embedded one, or EHRGW_MONGODB_URL), and a
gateway app per test on a database of its own, spoken to over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.server.app import create_app
from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.storage.embedded import EmbeddedMongo, free_port
from tests.epic_issuer import Issuer, serve_issuer
from tests.processes import staff_token


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("EHRGW_MONGODB_URL")
    if url:
        yield url
        return
    with EmbeddedMongo(tmp_path_factory.mktemp("embedded")) as server:
        yield server.url


class Gateway:
    """A client of one gateway app: runs GraphQL documents over HTTP, as the caller ``token``
    names (by default staff with every role on every tenant)."""

    def __init__(
        self, client: httpx.AsyncClient, config: GatewayConfig, token: str | None = None
    ) -> None:
        self.client = client
        self.config = config
        self.token = token if token is not None else staff_token(config.data_dir)

    def as_caller(
        self, *, tenants: list[str], roles: list[str], subject: str = "caller"
    ) -> Gateway:
        """The same app, spoken to by a caller with these tenants and roles."""
        token = dev_tokens.mint(self.config.data_dir, tenants=tenants, roles=roles, subject=subject)
        return Gateway(self.client, self.config, token)

    async def post(self, document: str, **variables: Any) -> dict[str, Any]:
        # Encoded here with ASCII escapes, so tests can send any string JSON can carry (even a
        # lone surrogate, which httpx's own encoder refuses).
        response = await self.client.post(
            "/graphql",
            content=json.dumps({"query": document, "variables": variables}),
            headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def execute(self, document: str, **variables: Any) -> dict[str, Any]:
        """Run ``document``; fail the test on any GraphQL error."""
        body = await self.post(document, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


# One database for the run: tests keep apart by tenant id. (A database per test would also do,
# but the embedded server keeps at most 100 databases open and evicts beyond that.)
TEST_DATABASE = f"test_{uuid.uuid4().hex[:12]}"
_SERVER_DATABASES = frozenset({"admin", "config", "local"})


@pytest.fixture(scope="module", autouse=True)
def _drop_the_modules_databases(database_url: str) -> Iterator[None]:
    """Drop, once a test module is done with them (its fixtures torn down before this one, set
    up first), the databases its tests and fixtures made for themselves. The embedded server
    counts every database a gateway ever watched as in use: past 100 in one run it closed a
    database a test was still using ("Cannot operate on a closed database"). A dropped one is
    forgotten."""
    with MongoClient(database_url, serverSelectionTimeoutMS=30_000) as client:
        before = set(client.list_database_names())
    yield
    with MongoClient(database_url, serverSelectionTimeoutMS=30_000) as client:
        made = set(client.list_database_names()) - before - _SERVER_DATABASES - {TEST_DATABASE}
        for name in sorted(made):
            client.drop_database(name)


# The database deadline of every gateway app a test builds in this process (configs read it from
# the environment unless a test sets its own; gateway processes started by tests get a clean
# environment). Production's 5 s was passed twice by a plain save in fresh-clone runs on a
# loaded machine (the shared embedded server and the test process share two cores); tests about
# the deadline set theirs.
TEST_DB_TIMEOUT_MS = 30_000
os.environ.setdefault("EHRGW_DB_TIMEOUT_MS", str(TEST_DB_TIMEOUT_MS))


def gateway_config(database_url: str, data_dir: Path, **overrides: Any) -> GatewayConfig:
    return GatewayConfig(
        mongodb_url=database_url,
        database=TEST_DATABASE,
        data_dir=data_dir,
        public_base_url="https://gateway.example.test",
        **overrides,
    )


@contextlib.asynccontextmanager
async def gateway_app(config: GatewayConfig) -> AsyncIterator[Gateway]:
    """A gateway app, shut down (its lifespan ended, its background tasks stopped) on leaving.
    What a fixture that opens several apps uses: an ``async for`` over ``open_gateway`` inside a
    generator the fixture closes leaves ``open_gateway`` itself open, and its shutdown then runs
    whenever that generator is garbage collected, as a task nobody awaits (at the loop's close
    if a traceback keeps it: after the database has stopped)."""
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(client, config)


async def open_gateway(config: GatewayConfig) -> AsyncIterator[Gateway]:
    async with gateway_app(config) as gateway:
        yield gateway


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in open_gateway(gateway_config(database_url, tmp_path)):
        yield opened


@pytest.fixture
async def local_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway that may call servers the tests start on loopback, over plain http."""
    config = gateway_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True
    )
    async for gateway in open_gateway(config):
        yield gateway


@pytest.fixture
async def epic() -> AsyncIterator[Issuer]:
    """Epic's JWT issuer on loopback."""
    async with serve_issuer() as issuer:
        yield issuer


@pytest.fixture
def tenant_id() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    """A database server of the test's own, in a separate process on a fixed port (so that it
    can come back there), which a test may stall, kill or restart."""
    server = EmbeddedMongo(tmp_path / "database", port=free_port())
    server.start()
    yield server
    server.stop()
