"""The cached read's own way out (the request gate sends a response-cache hit, and GraphQL
requests reach the gate ahead of Starlette's middleware) changes nothing a caller sees: a cached
answer has the status, bytes and headers, in their order, of the answer it was kept from and of
the generic path's (Strawberry, no response cache, no fast path), for each media type a client
may ask for; and an error nothing handled is answered as Starlette answers it on any route."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ehr_gateway.server.app import create_app
from ehr_gateway.server.logs import ACCESS_LOGGER
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER

ACCEPTS = [
    None,
    "application/json",
    "application/graphql-response+json",
    "application/graphql-response+json;q=0.5, application/json",
    "text/plain",
]
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


async def read(gateway: Gateway, tenant: str, headers: dict[str, str]) -> Answer:
    response = await gateway.client.post(
        "/graphql",
        content=json.dumps({"query": INTEGRATION_SETTINGS, "variables": {"tenantId": tenant}}),
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {gateway.token}",
            **headers,
        },
    )
    # A new request id per request unless the caller sent one: equal when it did.
    sent_id = "x-request-id" in headers
    kept = [
        (name, b"" if name == b"x-request-id" and not sent_id else value)
        for name, value in response.headers.raw
    ]
    return response.status_code, response.content, kept


@pytest.fixture
async def cached(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for gateway in open_gateway(gateway_config(database_url, tmp_path)):
        yield gateway


@pytest.fixture
async def generic(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    config = gateway_config(database_url, tmp_path, response_cache=False, compiled_reads=False)
    async for gateway in open_gateway(config):
        yield gateway


@pytest.mark.parametrize("accept", ACCEPTS)
async def test_a_cached_answer_is_the_answer_it_was_kept_from_byte_for_byte(
    cached: Gateway, generic: Gateway, accept: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = f"cached-{uuid.uuid4().hex[:8]}"
    await cached.execute(SELECT_PROVIDER, tenantId=tenant, provider="EPIC")
    headers = {} if accept is None else {"accept": accept}
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    caplog.clear()
    for extra in ({}, {"x-request-id": "caller-chosen-1"}):
        kept_from = await read(cached, tenant, {**headers, **extra})
        hit = await read(cached, tenant, {**headers, **extra})
        expected = await read(generic, tenant, {**headers, **extra})
        assert hit == kept_from == expected
    # The request id is no part of the key: the cached gateway's reads after the first are hits.
    caches = [r.cache for r in caplog.records if r.name == ACCESS_LOGGER]  # type: ignore[attr-defined]
    assert [c for c in caches if c is not None] == ["miss", "hit", "hit", "hit"]


async def test_an_error_nothing_handled_is_answered_as_starlette_answers_it(
    database_url: str, tmp_path: Path
) -> None:
    """A request whose body cannot be read (the connection fails under it) is the one error no
    part of the gateway answers: the same plain 500 as Starlette's own middleware gives on any
    route, and the error is raised on for the server to log."""
    config = gateway_config(database_url, tmp_path)
    app = create_app(config)
    gateway_client = Gateway(httpx.AsyncClient(), config)  # only for its staff token

    async def reads_body(request: Request) -> Response:
        await request.body()
        return Response(b"never")

    starlette = Starlette(routes=[Route("/graphql", reads_body, methods=["POST"])])

    async def failing() -> AsyncIterator[bytes]:
        yield b'{"query": '
        raise ConnectionResetError("the client went away")

    async def answer(to: Starlette) -> Answer:
        transport = httpx.ASGITransport(app=to, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.post(
                "/graphql",
                content=failing(),
                headers={
                    "content-type": "application/json",
                    "authorization": f"Bearer {gateway_client.token}",
                },
            )
        return response.status_code, response.content, response.headers.raw

    async with app.router.lifespan_context(app):
        got = await answer(app)
    expected = await answer(starlette)
    assert expected[0] == 500 and expected[1] == b"Internal Server Error"
    assert got == expected
