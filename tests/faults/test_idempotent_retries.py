"""A retried write is never applied twice: writes whose answer was lost (a connection cut after
the gateway answered, a database stalled mid-write) are retried with their idempotency key, and
two gateways on one database get the same key at once. Real gateway processes on a database
server of the test's own; the ledger is checked afterwards."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.runtime import dev_tokens
from ehr_gateway.storage.embedded import PID_FILE, EmbeddedMongo, free_port
from ehr_gateway.storage.secrets import new_key
from tests.database_proxy import Connection, DatabaseProxy, listening
from tests.documents import SELECT_ELLKAY
from tests.ledger import check_ledger, read_ledger
from tests.processes import GatewayProcess

DATABASE = "idempotent_retries"
DB_TIMEOUT_S = 1.0


STORE_VALUE = """
mutation StoreValue($tenantId: ID!, $value: String!, $expectedVersion: Int, $key: String) {
  updateEhrSettings(
    tenantId: $tenantId
    input: {ellkay: {waitlistingStatusName: $value}}
    expectedVersion: $expectedVersion
    idempotencyKey: $key
  ) {
    __typename
    ... on SettingsSaved {
      settings { version ehr { ... on EllkaySettings { waitlistingStatusName } } }
    }
    ... on VersionConflict { currentVersion }
    ... on ValidationFailed { errors { path code } }
  }
}
"""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    server = EmbeddedMongo(tmp_path / "database", port=free_port())
    server.start()
    yield server
    os.kill(_pid(server), signal.SIGCONT)  # in case a test stopped short of resuming it
    server.stop()


# Replicas of one deployment share its encryption key (what a request is MACed with in history).
ENCRYPTION_KEY = new_key()


def _gateway(database: EmbeddedMongo, data_dir: Path) -> GatewayProcess:
    return GatewayProcess(
        data_dir,
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE=DATABASE,
        EHRGW_DB_TIMEOUT_MS=str(int(DB_TIMEOUT_S * 1000)),
    )


@pytest.fixture
def gateways(
    database: EmbeddedMongo, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateways on one database, as behind a load balancer."""
    first = _gateway(database, tmp_path / "gateway-a")
    try:
        second = _gateway(database, tmp_path / "gateway-b")
    except BaseException:
        first.stop(5)
        raise
    yield first, second
    first.stop(5)
    second.stop(5)


def _pid(database: EmbeddedMongo) -> int:
    return int((database.data_dir / PID_FILE).read_text().strip())


async def post(
    url: str, token: str, document: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{url}/graphql",
            json={"query": document, "variables": variables},
            headers={"authorization": f"Bearer {token}", **(headers or {})},
        )
    body: dict[str, Any] = response.json()
    return body


async def store(gateway: GatewayProcess, tenant_id: str, value: str, **variables: Any) -> Any:
    body = await post(
        gateway.url, gateway.token, STORE_VALUE, tenantId=tenant_id, value=value, **variables
    )
    assert "errors" not in body, body
    return body["data"]["updateEhrSettings"]


def new_tenant(gateway: GatewayProcess) -> str:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    gateway.graphql(SELECT_ELLKAY, tenantId=tenant_id)  # version 1
    return tenant_id


@pytest.fixture
async def answer_lost(gateways: tuple[GatewayProcess, GatewayProcess]) -> AsyncIterator[str]:
    """A proxy on loopback in front of the first gateway that forwards each request and, as
    soon as the gateway starts to answer, closes the client's connection instead: the write
    landed, the client sees a transport error. Yields the proxy's URL."""
    upstream_port = gateways[0].port

    async def serve(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        gateway_in, gateway_out = await asyncio.open_connection("127.0.0.1", upstream_port)

        async def forward() -> None:
            while chunk := await client_in.read(1 << 16):
                gateway_out.write(chunk)
                await gateway_out.drain()

        forwarding = asyncio.create_task(forward())
        await gateway_in.read(1)  # the gateway answers: the mutation has run
        forwarding.cancel()
        client_out.transport.abort()
        gateway_out.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_a_write_whose_answer_was_lost_is_retried_and_stored_once(
    gateways: tuple[GatewayProcess, GatewayProcess], answer_lost: str, database: EmbeddedMongo
) -> None:
    gateway = gateways[0]
    tenant_id = new_tenant(gateway)
    acknowledged: dict[int, str] = {}
    for attempt in range(3):
        value, key = f"lost-{attempt}", f"key-{attempt}"
        with pytest.raises(httpx.TransportError):
            await post(
                answer_lost, gateway.token, STORE_VALUE, tenantId=tenant_id, value=value, key=key,
                expectedVersion=attempt + 1,
            )  # fmt: skip

        # The client cannot know whether it landed, and retries as it was, with the same key.
        retried = await store(gateway, tenant_id, value, key=key, expectedVersion=attempt + 1)

        assert retried["__typename"] == "SettingsSaved", retried
        assert retried["settings"]["version"] == attempt + 2
        acknowledged[attempt + 2] = value
    ledger = check_ledger(database.url, DATABASE, tenant_id, acknowledged)
    assert ledger.versions == [1, 2, 3, 4]


async def test_two_gateways_given_one_key_at_once_store_one_version(
    gateways: tuple[GatewayProcess, GatewayProcess], database: EmbeddedMongo
) -> None:
    first, second = gateways
    tenant_id = new_tenant(first)
    acknowledged: dict[int, str] = {}
    for round_ in range(10):
        value, key = f"raced-{round_}", f"race-{round_}"
        # Half the rounds with expectedVersion (both read the same version), half without (the
        # loser would otherwise store again on top of the winner).
        expected = {"expectedVersion": round_ + 1} if round_ % 2 else {}
        answers = await asyncio.gather(
            store(first, tenant_id, value, key=key, **expected),
            store(second, tenant_id, value, key=key, **expected),
        )
        assert answers[0] == answers[1], answers
        assert answers[0]["settings"]["version"] == round_ + 2
        acknowledged[round_ + 2] = value
    check_ledger(database.url, DATABASE, tenant_id, acknowledged)


async def test_a_key_reused_or_sent_by_another_caller_or_as_the_header_across_gateways(
    gateways: tuple[GatewayProcess, GatewayProcess], database: EmbeddedMongo
) -> None:
    first, second = gateways
    tenant_id = new_tenant(first)
    stored = await store(first, tenant_id, "one", key="shared")

    reused = await store(second, tenant_id, "other", key="shared")
    other_caller = dev_tokens.mint(
        second.data_dir, tenants=[tenant_id], roles=["editor"], subject="another-caller"
    )
    by_other = await post(
        second.url, other_caller, STORE_VALUE, tenantId=tenant_id, value="two", key="shared"
    )
    by_header = await post(
        second.url, second.token, STORE_VALUE, {"idempotency-key": "shared"},
        tenantId=tenant_id, value="one",
    )  # fmt: skip

    assert reused == {
        "__typename": "ValidationFailed",
        "errors": [{"path": ["idempotencyKey"], "code": "IDEMPOTENCY_KEY_REUSED"}],
    }
    assert by_other["data"]["updateEhrSettings"]["settings"]["version"] == 3
    assert by_header["data"]["updateEhrSettings"] == stored
    check_ledger(database.url, DATABASE, tenant_id, {2: "one", 3: "two"})


async def test_a_write_cut_short_by_a_stalled_database_is_stored_once_when_retried(
    gateways: tuple[GatewayProcess, GatewayProcess], database: EmbeddedMongo
) -> None:
    gateway = gateways[0]
    tenant_id = new_tenant(gateway)
    pid = _pid(database)
    acknowledged: dict[int, str] = {}
    unavailable = landed_anyway = 0
    for attempt in range(4):
        value, key = f"stalled-{attempt}", f"stall-{attempt}"
        before = len(read_ledger(database.url, DATABASE, tenant_id).versions)
        writing = asyncio.create_task(store_raw(gateway, tenant_id, value, key))
        # The database stops at some point of the write: before it, between its steps, or
        # after it (then the answer is the stored version).
        await asyncio.sleep(random.uniform(0, 0.03))
        os.kill(pid, signal.SIGSTOP)
        try:
            first = await writing
        finally:
            os.kill(pid, signal.SIGCONT)
        if "errors" in first:
            unavailable += 1
            error = first["errors"][0]
            assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
            assert "may have been stored" in error["message"]
            assert "idempotencyKey" in error["message"]
            await asyncio.sleep(0.5)  # what the database had been sent has run by now
            if len(read_ledger(database.url, DATABASE, tenant_id).versions) > before:
                landed_anyway += 1

        answer = await retry_until_answered(gateway, tenant_id, value, key)

        assert answer["__typename"] == "SettingsSaved", answer
        acknowledged[answer["settings"]["version"]] = value
    ledger = check_ledger(database.url, DATABASE, tenant_id, acknowledged)
    assert sorted(acknowledged) == ledger.versions[1:]  # every value once, in its version
    print(f"{unavailable} of 4 first attempts SERVICE_UNAVAILABLE, {landed_anyway} had landed")


async def store_raw(gateway: GatewayProcess, tenant_id: str, value: str, key: str) -> Any:
    return await post(
        gateway.url, gateway.token, STORE_VALUE, tenantId=tenant_id, value=value, key=key
    )


async def retry_until_answered(
    gateway: GatewayProcess, tenant_id: str, value: str, key: str, within: float = 30
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        body = await store_raw(gateway, tenant_id, value, key)
        if "errors" not in body:
            return body["data"]["updateEhrSettings"]
        assert loop.time() < deadline, body
        await asyncio.sleep(0.2)


class ReplyLost(DatabaseProxy):
    """Once armed, lets the next history insert through and drops every reply on that connection
    after it: the version is stored, the gateway waits out its database timeout and answers
    SERVICE_UNAVAILABLE."""

    def __init__(self, database_port: int) -> None:
        super().__init__(database_port)
        self.armed = False

    async def forward(self, chunk: bytes, connection: Connection) -> bool:
        if self.armed and b"insert" in chunk and b"tenant_settings_history" in chunk:
            self.armed = False
            connection.replies_dropped = True
        return True


@pytest.fixture
async def reply_lost(database: EmbeddedMongo) -> AsyncIterator[ReplyLost]:
    async with listening(ReplyLost(database.port)) as proxy:
        yield proxy


async def test_a_write_stored_but_answered_service_unavailable_is_found_by_its_retry(
    database: EmbeddedMongo, reply_lost: ReplyLost, tmp_path: Path
) -> None:
    gateway = await asyncio.to_thread(
        GatewayProcess,
        tmp_path / "behind-proxy",
        EHRGW_ENCRYPTION_KEY=ENCRYPTION_KEY,
        EHRGW_MONGODB_URL=reply_lost.url,
        EHRGW_DATABASE=DATABASE,
        EHRGW_DB_TIMEOUT_MS=str(int(DB_TIMEOUT_S * 1000)),
    )
    try:
        # (In a thread: the proxy runs on this event loop.)
        tenant_id = await asyncio.to_thread(new_tenant, gateway)
        reply_lost.armed = True

        first = await store_raw(gateway, tenant_id, "landed", "key-landed")

        # The version is in history, though the gateway could not tell: the message says so.
        assert first["errors"][0]["extensions"] == {"code": "SERVICE_UNAVAILABLE"}
        assert "may have been stored" in first["errors"][0]["message"]
        assert read_ledger(database.url, DATABASE, tenant_id).versions == [1, 2]
        retried = await retry_until_answered(gateway, tenant_id, "landed", "key-landed")
        assert retried["settings"] == {"version": 2, "ehr": {"waitlistingStatusName": "landed"}}
        # Answered as stored, and whole: the document and the audit entry were brought up to it.
        check_ledger(database.url, DATABASE, tenant_id, {2: "landed"})
    finally:
        await asyncio.to_thread(gateway.stop, 5)
