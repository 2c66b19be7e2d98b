"""A single-page admin app on another origin subscribes from a real browser (Chromium): the
origins of EHRGW_CORS_ORIGINS may, any other origin may not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser import chromium
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback

SELECT_EPIC = """
mutation ($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""

CONFIGURATION_CHANGED = """
subscription ($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId, sinceVersion: 0) { version settings { provider } }
}
"""

# The page speaks graphql-transport-ws over the browser's own WebSocket, so the handshake (and its
# Origin header) is the browser's, as an app's would be.
ADMIN_PAGE = """<!doctype html>
<title>admin</title>
<script>
window.subscribe = (url, token, query, variables) => new Promise((resolve) => {
  const socket = new WebSocket(url, "graphql-transport-ws");
  socket.onopen = () => socket.send(JSON.stringify(
    { type: "connection_init", payload: { Authorization: "Bearer " + token } }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
    } else if (message.type === "next") {
      socket.close();
      resolve({ received: message.payload });
    }
  };
  socket.onclose = (event) => resolve({ closed: event.code });
});
</script>
"""


@asynccontextmanager
async def admin_page() -> AsyncIterator[str]:
    """The admin app's origin: a page served on its own loopback port."""

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(ADMIN_PAGE)

    async with serve_on_loopback(Starlette(routes=[Route("/", page)])) as origin:
        yield origin


async def subscribe_from(origin: str, gateway: GatewayProcess, tenant_id: str) -> dict[str, Any]:
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(origin + "/")
        result: dict[str, Any] = await page.evaluate(
            "([url, token, query, variables]) => subscribe(url, token, query, variables)",
            [gateway.ws_url, gateway.token, CONFIGURATION_CHANGED, {"tenantId": tenant_id}],
        )
        return result


async def test_a_page_on_an_allowed_origin_subscribes(tmp_path: Path) -> None:
    tenant_id = f"tenant-{uuid.uuid4().hex[:8]}"
    async with admin_page() as origin:
        gateway = GatewayProcess(tmp_path, EHRGW_CORS_ORIGINS=origin)
        try:
            await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant_id)
            result = await subscribe_from(origin, gateway, tenant_id)
        finally:
            gateway.stop()
    assert result == {
        "received": {
            "data": {"configurationChanged": {"version": 1, "settings": {"provider": "EPIC"}}}
        }
    }


async def test_a_page_on_another_origin_is_refused(tmp_path: Path) -> None:
    tenant_id = f"tenant-{uuid.uuid4().hex[:8]}"
    async with admin_page() as allowed, admin_page() as other:
        gateway = GatewayProcess(tmp_path, EHRGW_CORS_ORIGINS=allowed)
        try:
            await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant_id)
            result = await subscribe_from(other, gateway, tenant_id)
        finally:
            gateway.stop()
    # The handshake was refused (HTTP 403): the browser reports an abnormal closure and nothing
    # reached the page.
    assert result == {"closed": 1006}
