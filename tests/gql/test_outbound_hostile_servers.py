"""A server the gateway calls may be hostile (a tenant's EHR, key server or token endpoint is a
URL someone typed): one that sends its answer a byte every few seconds must not hold the call
for ever (httpx's timeouts bound each read, not the call), and JSON nested thousands deep is not
JSON the gateway reads, not an internal error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import Gateway
from tests.gql.test_external_gateway import _connect, _test
from tests.gql.test_external_gateway import local_gateway as local_gateway
from tests.servers import serve_on_loopback


async def drip(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"resourceType": "CapabilityStatement",'
        while True:  # within the read timeout (1 s), every time
            await asyncio.sleep(0.3)
            yield b" "

    return StreamingResponse(body(), media_type="application/json")


async def deep(request: Request) -> Response:
    return Response(b"[" * 100_000 + b"]" * 100_000, media_type="application/json")


HOSTILE = Starlette(routes=[Route("/drip/metadata", drip), Route("/deep/metadata", deep)])


@pytest.fixture
async def hostile_server() -> AsyncIterator[str]:
    async with serve_on_loopback(HOSTILE) as url:
        yield url


async def test_a_server_that_drips_its_answer_times_out_within_the_deadline(
    local_gateway: Gateway,
    hostile_server: str,
    tenant_id: str,
) -> None:
    await _connect(local_gateway, tenant_id, f"{hostile_server}/drip")
    started = time.monotonic()
    result = await _test(local_gateway, tenant_id)
    elapsed = time.monotonic() - started
    assert result["failure"] == {
        "code": "TIMEOUT", "message": "the server did not answer in time",
    }  # fmt: skip
    # The outbound timeout is 1 s here: the whole call gets 4 (one per hop of 3 redirects).
    assert elapsed < 8, elapsed


async def test_json_nested_100000_deep_is_not_json(
    local_gateway: Gateway,
    hostile_server: str,
    tenant_id: str,
) -> None:
    await _connect(local_gateway, tenant_id, f"{hostile_server}/deep")
    result = await _test(local_gateway, tenant_id)
    assert result["reachable"] is True
    assert result["failure"] == {"code": "NOT_JSON", "message": "the response is not JSON"}
