"""The GraphQL view: Strawberry's ASGI GraphQL over the gateway's schema, answering in the
media type the request accepts, refusing what Strawberry would answer with a traceback, and
authenticating WebSocket connections in connection_init."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from ehr_gateway.gql import graphiql
from ehr_gateway.gql.fanout import encode
from ehr_gateway.resolvers.context import Context
from ehr_gateway.runtime.identity import Unauthenticated
from ehr_gateway.runtime.json_limits import loads_bounded
from ehr_gateway.server.gate import MAX_JSON_DEPTH, request_error
from ehr_gateway.server.media import GRAPHQL_RESPONSE, JSON, response_media_type
from ehr_gateway.server.state import Gateway
from ehr_gateway.server.websocket import (
    ConnectionRefused,
    LegacyWsHandler,
    LimitedWebSocketAdapter,
    TransportWsHandler,
)


class GatewayGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = LegacyWsHandler
    websocket_adapter_class = LimitedWebSocketAdapter

    def __init__(
        self,
        gateway: Gateway,
    ) -> None:
        config = gateway.config
        super().__init__(
            gateway.schema,
            graphql_ide="graphiql" if config.introspection_enabled else None,
            connection_init_wait_timeout=timedelta(seconds=config.ws_init_timeout_s),
            max_subscriptions_per_connection=config.ws_max_subscriptions,
            # Browsers send Origin with every WebSocket handshake: pages on the origins CORS
            # admits may subscribe, as they may query.
            allowed_origins=config.cors_origin_list,
        )
        self._gateway = gateway
        self._schema = gateway.schema
        # A WebSocket message is held to what an HTTP body is (see server.websocket).
        self.max_message_bytes = config.max_body_bytes
        self.max_json_depth = MAX_JSON_DEPTH
        self._verifier = gateway.verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An HTTP request answered in the media type it accepts (server.media): with
        ``application/graphql-response+json``, a request refused before it ran is a 400 without
        ``data``. What Strawberry refuses itself (no query, JSON it cannot read, a batch, a
        mutation over GET) is a GraphQL response too, with a code, rather than its plain
        text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        media_type = response_media_type(scope)
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as refused:
            response = _refusal(scope, refused)
        else:
            if response.headers.get("content-type") == JSON:  # a GraphQL result (not GraphiQL)
                response.headers["content-type"] = media_type
                if media_type == GRAPHQL_RESPONSE and scope["state"].get("request_error"):
                    response.status_code = 400
        await response(scope, receive, send)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if _refused_before_running(result):
            request.scope["state"]["request_error"] = True
            if response_media_type(request.scope) == GRAPHQL_RESPONSE:
                # Nothing ran, so there is no data, not even null (GraphQL over HTTP).
                processed.pop("data", None)
        return processed

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as refused:
            if request_adapter.method == "GET" and isinstance(
                refused.__cause__, InvalidOperationTypeError
            ):
                # A GET must not change anything (a link or a prefetch could send it): the
                # method is what is wrong, and the answer says which one to use.
                raise HTTPException(405, "a mutation must be sent as a POST") from None
            raise

    async def render_graphql_ide(self, request: Request) -> Response:
        # Strawberry's page loads React and GraphiQL from a public CDN; this one from the gateway.
        return graphiql.page_response()

    def parse_json(self, data: str | bytes) -> Any:
        """A POST's body: a JSON object (or a list, a batch, which Strawberry refuses). Anything
        else (a string, a number, null) is refused here: Strawberry would call ``.get`` on it and
        answer HTTP 500 with a traceback."""
        body = _decode_request_json(data)
        if not isinstance(body, (dict, list)):
            raise HTTPException(400, "the request body must be a JSON object")
        return body

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        """A GET's parameters, its ``variables`` and ``extensions`` decoded: each must be a
        JSON object (or null), and the refusal names the one that is not."""
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if text := parsed.get(name):
                value = _decode_request_json(text)
                if not isinstance(value, (dict, type(None))):
                    raise HTTPException(400, f"`{name}` must be a JSON object or null")
                parsed[name] = value
        return parsed

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET naming a persisted document by id or hash asks for it to run, not for the IDE.
        params = request.query_params
        return (
            params.get("documentId") is None
            and params.get("extensions") is None
            and super().should_render_graphql_ide(request)
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The request, with the text of the persisted document it names by hash, and its
        ``operationName`` a string or null."""
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return data  # a batch: refused by Strawberry
        if not isinstance(data.operation_name, (str, type(None))):
            # Strawberry checks the other members' types but passes this one on, and graphql-core
            # turns it into text: `5` was refused as an unknown operation named "5".
            raise HTTPException(
                400,
                "The GraphQL operation's `operationName` must be a string or null, if provided.",
            )
        persisted = self._schema.persisted
        return persisted.resolve(data, await _document_id(self, request, data))

    def encode_json(self, data: object) -> str:
        # (Results shared by a subscription group are written by gql.fanout, encoded alike.)
        return encode(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        # HTTP requests were authenticated by the gate; a WebSocket is in on_ws_connect.
        state = request.scope.get("state", {})
        return self._gateway.started().context.for_request(
            state.get("request_id", ""), state.get("principal"), state.get("record")
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | None:
        """A subscription connection authenticates in connection_init: its payload carries
        ``Authorization: Bearer <token>`` (or ``token``)."""
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if authorization is None and isinstance(params.get("token"), str):
            authorization = f"Bearer {params['token']}"
        try:
            context.principal = await self._verifier.principal(
                authorization if isinstance(authorization, str) else None
            )
        except Unauthenticated as refused:
            # Worded as the gate's 401 for the same token.
            raise ConnectionRefused("UNAUTHENTICATED", f"not authenticated: {refused}") from None
        if context.principal.expires_at <= time.time():
            # Still inside the verifier's leeway for clock skew, but a connection is good only
            # until its token's expiry: it would be closed at its first operation.
            raise ConnectionRefused("UNAUTHENTICATED", "not authenticated: the token has expired")
        unset: UnsetType = UNSET
        return unset  # a plain connection_ack


async def _document_id(
    view: GatewayGraphQL, request: AsyncHTTPRequestAdapter, data: GraphQLRequestData
) -> object:
    """The request's ``documentId``, which Strawberry does not keep: looked for only when
    there is no query (the body read again is a hash-only request's few bytes)."""
    if data.query is not None:
        return None
    if request.method == "GET":
        return request.query_params.get("documentId")
    body = view.parse_json(await request.get_body())
    return body.get("documentId") if isinstance(body, dict) else None


def _decode_request_json(data: str | bytes) -> Any:
    """An HTTP request's JSON (the body, or a GET's variables and extensions). JSON nested too
    deep raises JsonTooDeep, which the request gate answers; WebSocket messages are decoded
    elsewhere (decode_json)."""
    try:
        return loads_bounded(data, max_depth=MAX_JSON_DEPTH)
    except json.JSONDecodeError:
        # Strawberry's own answer to invalid JSON (its parse_json would fail again, but on bytes
        # that are not UTF-8 with an exception it does not answer: HTTP 500).
        raise HTTPException(400, "Unable to parse request body as JSON") from None


def _refused_before_running(result: ExecutionResult) -> bool:
    """A request error (GraphQL over HTTP): the document could not be parsed or validated, or
    its variables did not fit, so nothing was executed. Errors raised while executing have a
    path."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


def _refusal(scope: Scope, refused: HTTPException) -> Response:
    if refused.status_code == 405:
        return request_error(scope, 405, "METHOD_NOT_ALLOWED", refused.reason, {"allow": "POST"})
    return request_error(scope, refused.status_code, "BAD_REQUEST", refused.reason)
