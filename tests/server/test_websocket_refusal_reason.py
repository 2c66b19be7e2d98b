"""A subscription client whose token the gateway refuses learns why, in the same words an HTTP
request with that token gets: graphql-ws (the client Apollo Client and urql subscribe with), in
Node, against a real gateway process; and a client of the legacy protocol, in its
connection_error and in the close."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from ehr_gateway.runtime import dev_tokens
from tests.documents import READ_VERSION
from tests.node_clients import run_node
from tests.processes import GatewayProcess, LegacyWsClient

CONFIGURATION_CHANGED = """
subscription Changes($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId, sinceVersion: 0) { version }
}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("refusal") / "data")
    try:
        yield process
    finally:
        process.stop()


def _http_refusal(gateway: GatewayProcess, token: str, tenant: str) -> str:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": READ_VERSION, "variables": {"tenantId": tenant}},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 401, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    message: str = error["message"]
    return message


def _subscribe(gateway: GatewayProcess, token: str, tenant: str) -> dict[str, object]:
    outcome: dict[str, object] = run_node(
        "websocket_refusal.mjs",
        gateway.ws_url,
        token,
        CONFIGURATION_CHANGED,
        json.dumps({"tenantId": tenant}),
        env={},
    )
    return outcome


def test_a_token_of_another_data_dir_is_refused_with_the_http_reason(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    # The mistake a developer makes: a token minted with a key of another data dir.
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    foreign = dev_tokens.mint(tmp_path / "elsewhere", tenants=[tenant], roles=["viewer"])
    http_message = _http_refusal(gateway, foreign, tenant)
    assert http_message == (
        "not authenticated: the token is signed by an unknown key, not this development "
        "gateway's (ehr-gateway token --help)"
    )

    assert _subscribe(gateway, foreign, tenant) == {
        "closed": {"code": 4403, "reason": http_message}
    }


def test_a_malformed_token_is_refused_with_the_http_reason(gateway: GatewayProcess) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    http_message = _http_refusal(gateway, "not-a-jwt", tenant)
    assert _subscribe(gateway, "not-a-jwt", tenant) == {
        "closed": {"code": 4403, "reason": http_message}
    }


async def test_the_legacy_protocol_gets_the_http_reason_too(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    foreign = dev_tokens.mint(tmp_path / "elsewhere", tenants=[tenant], roles=["viewer"])
    http_message = _http_refusal(gateway, foreign, tenant)

    client = await LegacyWsClient.connect(gateway.ws_url, init=False)
    await client.send(
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {foreign}"}}
    )
    assert await client.receive() == {
        "type": "connection_error",
        "payload": {"code": "UNAUTHENTICATED", "message": http_message},
    }
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await client.receive()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, http_message)
