"""The request headers a browser app on an allowed origin may send (EHRGW_CORS_ALLOW_HEADERS):
tracing (traceparent, baggage, sentry-trace) and client identification (Apollo's) pass the
preflight by default; headers outside the list are refused before any request is made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser import chromium
from tests.conftest import gateway_config, open_gateway
from tests.documents import SELECT_EPIC
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback

SETTINGS = """
query Settings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version provider }
}
"""

# What an instrumented Apollo Client app sends with each request: OpenTelemetry's and Sentry's
# tracing headers, Apollo's client identification and its CSRF-prevention header.
APP_HEADERS = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=opaque",
    "baggage": "release=admin-2.4.1,environment=staging",
    "sentry-trace": "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
    "apollographql-client-name": "admin-console",
    "apollographql-client-version": "2.4.1",
    "apollo-require-preflight": "true",
    "x-apollo-operation-name": "Settings",
    "idempotency-key": "page-load-1",
}

# The page posts with the browser's own fetch: the preflight, and the decision to send the
# request at all, are the browser's.
ADMIN_PAGE = """<!doctype html>
<title>admin</title>
<script>
window.query = async (url, token, headers, body) => {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json",
                 authorization: "Bearer " + token },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  } catch (refused) {
    return { refused: String(refused) };
  }
};
</script>
"""


@asynccontextmanager
async def admin_page() -> AsyncIterator[str]:
    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(ADMIN_PAGE)

    async with serve_on_loopback(Starlette(routes=[Route("/", page)])) as origin:
        yield origin


async def query_from(origin: str, gateway: GatewayProcess, headers: dict[str, str]) -> Any:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(origin + "/")
        return await page.evaluate(
            "([url, token, headers, body]) => query(url, token, headers, body)",
            [
                gateway.url + "/graphql",
                gateway.token,
                headers,
                {"query": SETTINGS, "variables": {"tenantId": "acme"}},
            ],
        )


async def test_a_traced_apollo_app_on_an_allowed_origin_queries(tmp_path: Path) -> None:
    async with admin_page() as origin:
        gateway = GatewayProcess(tmp_path, EHRGW_CORS_ORIGINS=origin)
        try:
            await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="acme")
            result = await query_from(origin, gateway, APP_HEADERS)
        finally:
            gateway.stop()
    assert result == {
        "status": 200,
        "body": {"data": {"integrationSettings": {"version": 1, "provider": "EPIC"}}},
    }


async def test_a_header_outside_the_configured_list_stops_the_browser(tmp_path: Path) -> None:
    async with admin_page() as origin:
        gateway = GatewayProcess(
            tmp_path,
            EHRGW_CORS_ORIGINS=origin,
            EHRGW_CORS_ALLOW_HEADERS="authorization, content-type",
        )
        try:
            result = await query_from(origin, gateway, {"traceparent": APP_HEADERS["traceparent"]})
        finally:
            gateway.stop()
    # The preflight failed: the browser never sent the request, and the page learns only that.
    assert set(result) == {"refused"}


ADMIN = "https://admin.example.test"


async def preflight(client: httpx.AsyncClient, *headers: str) -> httpx.Response:
    return await client.options(
        "/graphql",
        headers={
            "origin": ADMIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": ", ".join(headers),
        },
    )


async def test_the_default_list_admits_each_tracing_and_client_header(
    database_url: str, tmp_path: Path
) -> None:
    config = gateway_config(database_url, tmp_path, cors_origins=ADMIN)
    async for gateway in open_gateway(config):
        for header in APP_HEADERS:
            response = await preflight(gateway.client, "authorization", "content-type", header)
            assert response.status_code == 200, (header, response.text)
            allowed = response.headers["access-control-allow-headers"].lower()
            assert header in allowed


async def test_a_header_nobody_configured_is_refused(database_url: str, tmp_path: Path) -> None:
    config = gateway_config(database_url, tmp_path, cors_origins=ADMIN)
    async for gateway in open_gateway(config):
        response = await preflight(gateway.client, "authorization", "x-internal-debug")
    assert response.status_code == 400
    assert "x-internal-debug" not in response.headers["access-control-allow-headers"].lower()


async def test_the_list_is_what_is_configured(database_url: str, tmp_path: Path) -> None:
    config = gateway_config(
        database_url,
        tmp_path,
        cors_origins=ADMIN,
        cors_allow_headers="Authorization, Content-Type, X-Tenant-Hint",
    )
    async for gateway in open_gateway(config):
        added = await preflight(gateway.client, "authorization", "x-tenant-hint")
        dropped = await preflight(gateway.client, "authorization", "traceparent")
    assert added.status_code == 200, added.text
    assert dropped.status_code == 400
