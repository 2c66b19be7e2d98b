"""JSON that Python will not read is the client's mistake, answered like any invalid JSON: a body
that is not UTF-8 (nor -16 or -32) and a number longer than Python's integer conversion limit
(4,300 digits) got HTTP 500 and a traceback in the log; over WebSocket the same number dropped
the connection with no close frame. Now: 400 over HTTP, 4400 over WebSocket, no traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import Gateway
from tests.processes import GatewayProcess, started_gateway

LONG_NUMBER = "1" * 5000
READ_VERSION = 'query { integrationSettings(tenantId: "acme") { version } }'


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [record for record in caplog.records if record.exc_info], caplog.text


async def _post(gateway: Gateway, body: bytes) -> httpx.Response:
    return await gateway.client.post(
        "/graphql",
        content=body,
        headers={"authorization": f"Bearer {gateway.token}", "content-type": "application/json"},
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff\xfe{", id="truncated-utf-16"),
        pytest.param(b'{"query": "\xff"}', id="invalid-utf-8"),
        pytest.param(
            b'{"query": "{ __typename }", "variables": {"a": ' + LONG_NUMBER.encode() + b"}}",
            id="5000-digit-number",
        ),
    ],
)
async def test_a_body_python_cannot_read_is_a_400(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await _post(gateway, body)
    assert response.status_code == 400, response.text
    assert "Unable to parse request body as JSON" in response.text
    _no_traceback(caplog)


async def test_a_long_number_in_a_get_s_variables_is_a_400(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await gateway.client.get(
        "/graphql",
        params={"query": READ_VERSION, "variables": f'{{"a": {LONG_NUMBER}}}'},
        headers={"authorization": f"Bearer {gateway.token}"},
    )
    assert response.status_code == 400, response.text
    _no_traceback(caplog)


async def test_a_number_of_normal_length_still_reads(gateway: Gateway) -> None:
    body = json.dumps({"query": "{ __typename }", "variables": {"a": 10**100}}).encode()
    response = await _post(gateway, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.fixture(scope="module")
def process(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(tmp_path_factory.mktemp("unreadable-json"), database_url) as running:
        yield running


@pytest.mark.parametrize("initialised", [False, True], ids=["in-connection-init", "after-ack"])
async def test_a_long_number_over_websocket_closes_with_4400(
    process: GatewayProcess, initialised: bool
) -> None:
    start = len(process.printed())
    async with websockets.connect(
        process.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as connection:
        if initialised:
            init = {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {process.token}"},
            }
            await connection.send(json.dumps(init))
            assert json.loads(await connection.recv())["type"] == "connection_ack"
            await connection.send('{"type": "ping", "payload": {"a": ' + LONG_NUMBER + "}}")
        else:
            await connection.send(
                '{"type": "connection_init", "payload": {"a": ' + LONG_NUMBER + "}}"
            )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None, "closed without a close frame"
    assert closed.value.rcvd.code == 4400
    assert "Traceback" not in process.printed()[start:]
