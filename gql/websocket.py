"""The two WebSocket subscription protocols, hardened against malformed clients.

Strawberry's handlers assume every message is a JSON object with the fields its type needs; a
client that sends anything else (a JSON array, a message without a type, a `start` without a
payload) makes them raise, which drops the connection without a close frame and logs a traceback.
Here such messages close the connection with 4400, as graphql-transport-ws specifies. The legacy
protocol also gets the connection_init deadline the current one has (4408 when it passes).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from resolvers.context import Context

_NEEDS_ID = {"start", "stop"}


class TransportWsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (the current protocol)."""

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            await self.handle_invalid_message("a message must be a JSON object")
            return
        await super().handle_message(message)  # type: ignore[arg-type]


class LegacyWsHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (the legacy subscriptions-transport-ws protocol)."""

    async def handle(self) -> None:
        deadline = asyncio.create_task(self._close_unless_initialised())
        try:
            await super().handle()
        finally:
            deadline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deadline

    async def _close_unless_initialised(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.connection_acknowledged:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_message(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        malformed = (
            not isinstance(kind, str)
            or (kind in _NEEDS_ID and not isinstance(message.get("id"), str))
            or (kind == "start" and not isinstance(message.get("payload"), dict))
        )
        if malformed:
            await self.websocket.close(code=4400, reason="Invalid message")
            return
        await super().handle_message(message)
