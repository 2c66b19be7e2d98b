"""The two WebSocket subscription protocols, hardened against malformed clients.

Strawberry's handlers assume every message is a JSON object with the fields its type needs; a
client that sends anything else (a JSON array, a message without a type, a `start` without a
payload) makes them raise, which drops the connection without a close frame and logs a traceback.
Here such messages close the connection with 4400, as graphql-transport-ws specifies. The legacy
protocol also gets the connection_init deadline the current one has (4408 when it passes).

Every message is read within the limits an HTTP body has: one larger than the body limit closes
the connection with 1009 (Message Too Big; uvicorn refuses it first, from the frame header, so it
is never read into memory), and JSON nested deeper than the JSON depth limit closes it with 4400
before it is decoded (Python's decoder would recurse until RecursionError).

A connection that connection_init does not authenticate is closed with 4403 and, as its reason,
the message an HTTP request with that token gets in its 401 (the legacy protocol sends it in a
connection_error first): a client that logs the close says why, as it would for HTTP.

An operation's payload must name a string `query`, with `variables` and `extensions` objects or
null and `operationName` a string or null: Strawberry hands whatever came to the lexer (a
TypeError in a worker task, logged at error level; on graphql-ws a missing `query` drops the
connection). graphql-transport-ws closes such a `subscribe` with 4400 and a reason naming the
field, as it does every invalid message; graphql-ws answers the `start` with an `error` for its id
and keeps the connection, its way of refusing one operation.

A connection authenticates once: a second connection_init closes it with 4429 on both protocols
(the legacy one sends a connection_error first), so no later token replaces its caller.

A connection is as good as the token it authenticated with: the token's expiry closes the
connection with 4403 (Forbidden), whether or not operations are running, so that graphql-ws
clients reconnect with a fresh token (4403 is not among the codes they give up on) and an idle
connection does not keep a caller whose access has ended connected (with the descriptor and
buffers it holds) for as long as it likes. An operation that arrives after the expiry but before
the watch has closed the connection is refused the same way.

Each connection has a ``fanout.Connection``, and each operation its place on it, set for the
operation's task: a live subscription that shares a group gets its results written there by the
group (gql.fanout), beneath Strawberry's per-operation sending. An operation that ends (the
client's complete or stop, the connection's close) stops that at once, before its task has run
again, so nothing more is written for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from json import JSONDecodeError
from typing import Any, Protocol, cast

from graphql import GraphQLError, GraphQLFormattedError
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    Operation as StrawberryOperation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInit,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage as TransportError,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInit,
)
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyError
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from ehr_gateway.gql.documents import is_token_limit
from ehr_gateway.gql.fanout import Connection, Operation, direct_delivery
from ehr_gateway.resolvers.context import Context
from ehr_gateway.runtime.json_limits import JsonTooDeep, loads_bounded

_NEEDS_ID = {"start", "stop"}
MESSAGE_TOO_BIG = 1009  # RFC 6455
FORBIDDEN = 4403
EXPIRED = "Forbidden: the token has expired"
# graphql-transport-ws's close for a second connection_init, used by the legacy protocol too.
TOO_MANY_INITS_CODE = 4429
TOO_MANY_INITS = "Too many initialisation requests"
# Strawberry refuses the operation past max_subscriptions_per_connection with bare text; every
# other refusal names a code, and this one tells the client to use another connection.
TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"


def _too_many_operations(limit: int) -> GraphQLFormattedError:
    return {
        "message": f"this connection has its {limit} operations running: end one, or start "
        "this one on another connection",
        "extensions": {"code": TOO_MANY_OPERATIONS},
    }


# RFC 6455 allows a close reason of at most 123 bytes (UTF-8).
_MAX_CLOSE_REASON = 123


class ConnectionRefused(Exception):
    """connection_init did not authenticate: ``message`` is what an HTTP request gets."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def close_reason(self) -> str:
        encoded = self.message.encode("utf-8")
        if len(encoded) <= _MAX_CLOSE_REASON:
            return self.message
        return encoded[:_MAX_CLOSE_REASON].decode("utf-8", "ignore")


class MessageLimits(Protocol):
    """What the view tells its WebSocket connections about message limits."""

    max_message_bytes: int
    max_json_depth: int


class LimitedWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's ASGI WebSocket adapter, reading each message within the view's limits."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        limits = cast(MessageLimits, self.view)
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if _utf8_length_exceeds(text, limits.max_message_bytes):
                    reason = f"the message exceeds {limits.max_message_bytes} bytes"
                    await self.close(code=MESSAGE_TOO_BIG, reason=reason)
                    return
                try:
                    message = loads_bounded(text, max_depth=limits.max_json_depth)
                except JsonTooDeep as deep:
                    await self.close(code=4400, reason=str(deep))
                    return
                except JSONDecodeError as error:
                    if ignore_parsing_errors:
                        continue
                    raise NonJsonMessageReceived from error
                yield message
        except KeyError as error:  # a binary message: Starlette's receive_text finds no text
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass


def _utf8_length_exceeds(text: str, limit: int) -> bool:
    if len(text) > limit:
        return True  # every character takes at least a byte
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


def payload_problem(payload: object) -> str | None:
    """What is wrong with an operation's payload (subscribe or start), or None."""
    if not isinstance(payload, dict):
        return "the payload must be a JSON object"
    if not isinstance(payload.get("query"), str):
        return "`query` must be a string"
    for name in ("variables", "extensions"):
        if not isinstance(payload.get(name), (dict, type(None))):
            return f"`{name}` must be a JSON object or null"
    if not isinstance(payload.get("operationName"), (str, type(None))):
        return "`operationName` must be a string or null"
    return None


def _expired(context: Context) -> bool:
    principal = context.principal
    return principal is not None and principal.expires_at <= time.time()


async def _until_expiry(context: Context) -> bool:
    """Wait for the connection's token to expire; False at once if it has no caller (never so
    once connection_init is acknowledged: on_ws_connect sets one or refuses)."""
    principal = context.principal
    if principal is None:
        return False
    await sleep_until_wall_time(principal.expires_at)
    return True


async def sleep_until_wall_time(moment: float) -> None:
    """Return once ``time.time()`` has reached ``moment``."""
    # The sleep runs on the monotonic clock while a token's expiry is wall-clock time; when the
    # wall clock is slewed the sleep can end before the moment, so it is checked again.
    while (left := moment - time.time()) > 0:  # noqa: ASYNC110 (a deadline, not a condition)
        await asyncio.sleep(left)


class _Deliveries:
    """A connection's places for its operations' grouped results (see gql.fanout), by id."""

    def __init__(self, websocket: object) -> None:
        ws = cast(LimitedWebSocketAdapter, websocket).ws
        self.connection = Connection(ws.send_text)
        self._by_id: dict[str, Operation] = {}

    def open(self, operation_id: str, message_type: str) -> Operation:
        delivery = self.connection.operation(operation_id, message_type)
        self._by_id[operation_id] = delivery
        direct_delivery.set(delivery)  # for the operation's own task: the multiplexer reads it
        return delivery

    def end(self, operation_id: str, delivery: Operation | None = None) -> None:
        """The operation is over (or, given ``delivery``, that run of it is)."""
        current = self._by_id.get(operation_id)
        if current is not None and (delivery is None or current is delivery):
            del self._by_id[operation_id]
            current.close()
        if delivery is not None:
            delivery.close()

    def close(self) -> None:
        self.connection.close()
        for delivery in self._by_id.values():
            delivery.close()
        self._by_id.clear()


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TransportWsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (the current protocol)."""

    _expiry: asyncio.Task[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliveries = _Deliveries(self.websocket)

    async def run_operation(self, operation: StrawberryOperation[Context, None]) -> None:
        delivery = self._deliveries.open(operation.id, "next")
        try:
            await super().run_operation(operation)
        finally:
            self._deliveries.end(operation.id, delivery)

    async def cleanup_operation(self, operation_id: str) -> None:
        self._deliveries.end(operation_id)
        await super().cleanup_operation(operation_id)

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            await self.handle_invalid_message("a message must be a JSON object")
            return
        await super().handle_message(message)  # type: ignore[arg-type]

    async def handle_connection_init(self, message: TransportInit) -> None:
        # Strawberry closes a rejected connection_init with the bare reason "Forbidden".
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            await self.websocket.close(code=FORBIDDEN, reason=refused.close_reason)
            return
        if self.connection_acknowledged and self._expiry is None:
            self._expiry = asyncio.create_task(self._close_at_expiry())

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and _expired(self.context):
            await self.websocket.close(code=FORBIDDEN, reason=EXPIRED)
            return
        # Before an unauthenticated connection is told 4401 (Strawberry's check), nothing of
        # the payload is read.
        if self.connection_acknowledged:
            problem = (
                "`id` must be a string"
                if not isinstance(message.get("id"), str)
                else payload_problem(message.get("payload"))
            )
            if problem is not None:
                await self.websocket.close(code=4400, reason=f"Invalid subscribe: {problem}")
                return
            limit = self.max_subscriptions_per_connection
            # Strawberry's own check, in its order: a repeated id is closed with 4409 first.
            if (
                limit is not None
                and message["id"] not in self.operations
                and len(self.operations) >= limit
            ):
                refusal = [_too_many_operations(limit)]
                await self.send_message(
                    TransportError(id=message["id"], type="error", payload=refusal)
                )
                return
        await super().handle_subscribe(message)

    async def _close_at_expiry(self) -> None:
        if await _until_expiry(self.context):
            await self.websocket.close(code=FORBIDDEN, reason=EXPIRED)

    async def shutdown(self) -> None:
        self._deliveries.close()
        await _stop(self._expiry)
        await super().shutdown()

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        # A document past the token limit is refused like one past the depth or alias limits:
        # an `error` message naming the limit, not a close as for a document that does not
        # parse.
        if is_token_limit(error):
            return None
        return BaseGraphQLTransportWSHandler._get_pre_execution_close_reason(error)


class LegacyWsHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (the legacy subscriptions-transport-ws protocol)."""

    _expiry: asyncio.Task[None] | None = None
    _init_received = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliveries = _Deliveries(self.websocket)

    async def handle(self) -> None:
        deadline = asyncio.create_task(self._close_unless_initialised())
        try:
            await super().handle()
        finally:
            await _stop(deadline)
            await _stop(self._expiry)

    async def cleanup(self) -> None:
        self._deliveries.close()
        await super().cleanup()

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        delivery = self._deliveries.open(operation_id, "data")
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        finally:
            self._deliveries.end(operation_id, delivery)

    async def cleanup_operation(self, operation_id: str) -> None:
        self._deliveries.end(operation_id)
        await super().cleanup_operation(operation_id)

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

    async def handle_connection_init(self, message: LegacyInit) -> None:
        # Strawberry's legacy handler takes every connection_init as a new login: a second one
        # swapped the connection's caller while the expiry watch kept the first token's expiry.
        # graphql-transport-ws closes a second one with 4429; so does this, after the legacy
        # protocol's word for a refused connection.
        if self._init_received:
            with contextlib.suppress(Exception):
                await self.send_message(
                    {
                        "type": "connection_error",
                        "payload": {"code": "BAD_REQUEST", "message": TOO_MANY_INITS},
                    }
                )
            await self.websocket.close(code=TOO_MANY_INITS_CODE, reason=TOO_MANY_INITS)
            return
        self._init_received = True
        try:
            await super().handle_connection_init(message)
        except ConnectionRefused as refused:
            with contextlib.suppress(Exception):
                await self.send_message(
                    {
                        "type": "connection_error",
                        "payload": {"code": refused.code, "message": refused.message},
                    }
                )
            await self.websocket.close(code=FORBIDDEN, reason=refused.close_reason)
            return
        if self.connection_acknowledged and self._expiry is None:
            self._expiry = asyncio.create_task(self._close_at_expiry())

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and _expired(self.context):
            await self._refuse_expired()
            return
        problem = payload_problem(message["payload"]) if self.connection_acknowledged else None
        if problem is not None:
            await self.send_message(
                {
                    "type": "error",
                    "id": message["id"],
                    "payload": {"message": problem, "extensions": {"code": "BAD_REQUEST"}},
                }
            )
            return
        limit = self.max_subscriptions_per_connection
        # Strawberry's own check: an operation restarted under its id replaces the running one.
        if limit is not None and len(self.tasks) - (message["id"] in self.tasks) >= limit:
            await self.send_message(
                LegacyError(type="error", id=message["id"], payload=_too_many_operations(limit))
            )
            return
        await super().handle_start(message)

    async def _close_at_expiry(self) -> None:
        if await _until_expiry(self.context):
            await self._refuse_expired()

    async def _refuse_expired(self) -> None:
        # The legacy protocol's word for a refused connection, then the close code the current
        # protocol uses for it.
        with contextlib.suppress(Exception):
            await self.send_message(
                {
                    "type": "connection_error",
                    "payload": {"code": "UNAUTHENTICATED", "message": "the token has expired"},
                }
            )
        await self.websocket.close(code=FORBIDDEN, reason=EXPIRED)
