"""Attack: one connection opens more operations than EHRGW_WS_MAX_SUBSCRIPTIONS allows.

The operation past the limit is refused, as documented, but its ``error`` message carries only
Strawberry's bare text ("Subscription limit reached"), with no ``extensions.code``: every other
refusal the gateway makes over either protocol names a code (FORBIDDEN, BAD_REQUEST,
COST_LIMIT, DOCUMENT_NOT_TRUSTED ...), so a client cannot tell this one from a failure of the
operation itself and retry it on another connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gql.test_configuration_changed import CONFIGURATION_CHANGED, new_tenant
from tests.processes import GatewayProcess, LegacyWsClient, TransportWsClient


@pytest.fixture(scope="module")
def limited(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    running = GatewayProcess(
        Path(tmp_path_factory.mktemp("ws-one-operation")),
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"ws_one_{uuid.uuid4().hex[:8]}",
        EHRGW_WS_MAX_SUBSCRIPTIONS="1",
    )
    yield running
    running.stop()


@pytest.mark.parametrize("client", [TransportWsClient, LegacyWsClient], ids=lambda c: c.protocol)
async def test_the_operation_past_the_limit_is_refused_with_a_code(
    limited: GatewayProcess, client: type[TransportWsClient]
) -> None:
    tenant_id = new_tenant(limited)
    connection = await client.connect(limited.ws_url, token=limited.token)
    await connection.subscribe("first", CONFIGURATION_CHANGED, tenantId=tenant_id)
    await connection.subscribe("second", CONFIGURATION_CHANGED, tenantId=tenant_id)

    refusal = await connection.receive()
    await connection.close()

    assert refusal["type"] == "error" and refusal["id"] == "second", refusal
    payload = refusal["payload"]
    errors = payload if isinstance(payload, list) else [payload]
    assert errors[0].get("extensions", {}).get("code"), refusal
