"""One request, one deadline: with the database stalled, a request that makes several database
calls (a read, retried; a history insert, an audit entry, the document) answers
SERVICE_UNAVAILABLE once EHRGW_DB_TIMEOUT_MS has passed, not once per call; and writes go on
when the database does, with nothing acknowledged lost."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.faults._database import stalled
from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED
from tests.ledger import check_ledger
from tests.processes import GatewayProcess, TransportWsClient

DATABASE = "deadline"
DB_TIMEOUT_S = 1.0
SELECT_ELLKAY = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: ELLKAY) { __typename }
}
"""
STORE_KEY = """
mutation StoreKey($tenantId: ID!, $key: String!) {
  updateEhrSettings(tenantId: $tenantId, input: {ellkay: {waitlistingStatusName: $key}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""


@pytest.fixture
def gateway(database: EmbeddedMongo, tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(
        tmp_path / "gateway",
        EHRGW_MONGODB_URL=database.url,
        EHRGW_DATABASE=DATABASE,
        EHRGW_DB_TIMEOUT_MS=str(int(DB_TIMEOUT_S * 1000)),
    )
    yield gateway
    gateway.stop(5)


def ask(gateway: GatewayProcess, document: str, **variables: Any) -> tuple[float, dict[str, Any]]:
    """How long the gateway took to answer, and its answer."""
    started = time.monotonic()
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"authorization": f"Bearer {gateway.token}"},
        timeout=30,  # a late answer is measured, not cut off
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return elapsed, body


def unavailable(body: dict[str, Any]) -> bool:
    codes = [error.get("extensions", {}).get("code") for error in body.get("errors", [])]
    return codes == ["SERVICE_UNAVAILABLE"]


def store(gateway: GatewayProcess, tenant_id: str, key: str, within: float = 20) -> int:
    """Store ``key`` (retrying while the database is away); the version it was stored as."""
    deadline = time.monotonic() + within
    while True:
        try:
            _, body = ask(gateway, STORE_KEY, tenantId=tenant_id, key=key)
        except httpx.HTTPError as error:
            body = {"errors": [repr(error)]}
        if "errors" not in body:
            result = body["data"]["updateEhrSettings"]
            assert result["__typename"] == "SettingsSaved", result
            version: int = result["settings"]["version"]
            return version
        assert time.monotonic() < deadline, f"{key} was not stored: {body}"
        time.sleep(0.2)


def test_a_request_with_many_database_calls_waits_one_deadline_for_a_stalled_database(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    _, body = ask(gateway, SELECT_ELLKAY, tenantId=tenant_id)
    assert body["data"]["selectEhrProvider"]["__typename"] == "SettingsSaved", body
    acknowledged = {store(gateway, tenant_id, "before"): "before"}
    never_seen = f"t-{uuid.uuid4().hex[:8]}"  # nothing of it cached: read, then write

    with stalled(database):
        write_took, write = ask(gateway, STORE_KEY, tenantId=tenant_id, key="during")
        first_took, first = ask(gateway, SELECT_ELLKAY, tenantId=never_seen)
    print(
        f"with the database stalled and a deadline of {DB_TIMEOUT_S}s: a write answered in "
        f"{write_took:.2f}s, a first write of a new tenant in {first_took:.2f}s"
    )

    assert unavailable(write), write
    assert unavailable(first), first
    # Each call used to get the whole timeout of its own (and a stalled read twice that, and
    # its retry once more): 3 s and more for these. One deadline, and a margin for the machine.
    assert write_took < 2 * DB_TIMEOUT_S
    assert first_took < 2 * DB_TIMEOUT_S

    # The database is back: writes are acknowledged again, by themselves.
    for key in ("after-1", "after-2"):
        acknowledged[store(gateway, tenant_id, key)] = key
    check_ledger(database.url, DATABASE, tenant_id, acknowledged)
    check_ledger(database.url, DATABASE, never_seen, {})
    output = gateway.stop()
    assert "Traceback" not in output, output[-5000:]


def test_a_tenant_key_set_waits_one_deadline_for_a_stalled_database(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    never_seen = f"t-{uuid.uuid4().hex[:8]}"  # nothing of it cached: the route reads
    key_set = f"{gateway.url}/tenants/{never_seen}/.well-known/jwks.json"

    with stalled(database):
        started = time.monotonic()
        response = httpx.get(key_set, timeout=30)  # a late answer is measured, not cut off
        took = time.monotonic() - started
    print(f"with the database stalled and a deadline of {DB_TIMEOUT_S}s: answered in {took:.2f}s")

    assert response.status_code == 503, response.text
    assert response.json() == {"error": "unavailable"}
    assert response.headers["retry-after"] == "1"
    # The key set's read used to wait out the driver's timeouts (4 s and more). One deadline,
    # and a margin for the machine.
    assert took < 2 * DB_TIMEOUT_S

    # The database is back: the tenant has no key set, and says so.
    assert httpx.get(key_set, timeout=10).status_code == 404
    output = gateway.stop()
    assert "Traceback" not in output, output[-5000:]


async def test_a_subscription_replay_waits_one_deadline_per_read_for_a_stalled_database(
    database: EmbeddedMongo, gateway: GatewayProcess
) -> None:
    """A subscription lives as long as its client, so no one deadline covers it; but each read it
    makes (where it starts, each page of history) has one, and a replay opened while the database
    is stalled is an error within it, not a wait for as long as the stall lasts (holding one of
    the process's few history-read slots)."""
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    ask(gateway, SELECT_ELLKAY, tenantId=tenant_id)
    client = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    try:
        with stalled(database):
            started = time.monotonic()
            await client.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
            message = await client.receive(within=30)
            answered = time.monotonic() - started
        assert message["id"] == "1", message
        assert "SERVICE_UNAVAILABLE" in json.dumps(message), message
        print(f"subscription refused {answered:.2f}s into the stall (deadline {DB_TIMEOUT_S}s)")
        # The driver's own timeouts (2x for a read on an open connection) would take longer.
        assert answered < 1.6 * DB_TIMEOUT_S
        # The database back, the same subscription is served.
        await client.subscribe("2", CONFIGURATION_CHANGED, tenantId=tenant_id, sinceVersion=0)
        assert (await client.next_data("2", within=20))["configurationChanged"]["version"] == 1
    finally:
        await client.close()
