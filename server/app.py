"""The Starlette application: GraphQL at /graphql; liveness, readiness and metrics at /healthz,
/readyz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from gql import graphiql
from gql.execution import GatewaySchema
from gql.limits import Limits
from gql.multiplex import SharedPayloads
from gql.persisted_documents import ManifestError, PersistedDocumentsSetup, read_manifests
from gql.schema import gateway_schema
from resolvers import dev_tokens
from resolvers.broker import Broker
from resolvers.context import Context, Deployment
from resolvers.denials import Denials
from resolvers.history_reads import HistoryReads
from resolvers.identity import ClaimNames, IssuerKeys, TokenVerifier, Unauthenticated
from resolvers.jku_observation_log import JkuObservations
from resolvers.json_limits import loads_bounded
from resolvers.oauth import published_jwks
from resolvers.outbound import Outbound, OutboundPolicy
from resolvers.settings_cache import SettingsCache
from server import logs
from server.base_path import base_path_route
from server.config import ConfigError, GatewayConfig, load_config
from server.gate import MAX_JSON_DEPTH, RequestGate, request_error
from server.http_protocol import set_read_timeout
from server.media import GRAPHQL_RESPONSE, JSON, response_media_type
from server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from server.metrics import GatewayMetrics, LiveState
from server.response_cache import ResponseCache
from server.websocket import (
    ConnectionRefused,
    LegacyWsHandler,
    LimitedWebSocketAdapter,
    TransportWsHandler,
)
from storage.change_feed import ChangeFeed
from storage.client import (
    ServerOutages,
    connect,
    database_deadline,
    error_summary,
    is_unavailable,
    reason,
)
from storage.health import DatabaseHealth
from storage.migrations import seal_stored_secrets
from storage.observations import ObservedJkuStore
from storage.repair import Repairs
from storage.repository import HistoryEntry, SettingsRepository
from storage.secrets import SecretBox

logger = logging.getLogger("ehr_gateway.http")


def _json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


@dataclass
class Services:
    """What the app holds between startup and shutdown."""

    client: AsyncMongoClient[dict[str, Any]]
    context: Context
    feed: ChangeFeed


class GatewayGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = LegacyWsHandler
    websocket_adapter_class = LimitedWebSocketAdapter

    def __init__(
        self,
        services: dict[str, Services],
        config: GatewayConfig,
        schema: GatewaySchema,
        verifier: TokenVerifier,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if config.introspection_enabled else None,
            connection_init_wait_timeout=timedelta(seconds=config.ws_init_timeout_s),
            max_subscriptions_per_connection=config.ws_max_subscriptions,
            # Browsers send Origin with every WebSocket handshake: pages on the origins CORS
            # admits may subscribe, as they may query.
            allowed_origins=config.cors_origin_list,
        )
        self._services = services
        self._schema = schema
        self._payloads = SharedPayloads()
        # A WebSocket message is held to what an HTTP body is (see server.websocket).
        self.max_message_bytes = config.max_body_bytes
        self.max_json_depth = MAX_JSON_DEPTH
        self._verifier = verifier

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
        """The request, with the text of the persisted document it names by hash."""
        data = await super().parse_http_body(request)
        if isinstance(data, list):
            return data  # a batch: refused by Strawberry
        persisted = self._schema.persisted
        return persisted.resolve(data, await _document_id(self, request, data))

    def encode_json(self, data: object) -> str:
        # Subscription results shared by a group are serialised once for all its members.
        if isinstance(data, dict):
            return self._payloads.encode(data, _json)
        return _json(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        # HTTP requests were authenticated by the gate; a WebSocket is in on_ws_connect.
        state = request.scope.get("state", {})
        return self._services["current"].context.for_request(
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


class GraphQLFirst:
    """Hands GraphQL HTTP requests (any method on /graphql) straight to the request gate,
    ahead of Starlette's exception middleware and router, which every settings read would
    otherwise pass through. The gate and Strawberry answer every expected failure themselves,
    a method other than GET and POST included (405 as a GraphQL response, which the router's
    plain text is not); anything else is still answered 500 by the outermost middleware."""

    def __init__(self, app: ASGIApp, graphql: ASGIApp) -> None:
        self._app = app
        self._graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/graphql":
            await self._graphql(scope, receive, send)
        else:
            await self._app(scope, receive, send)


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


def schema_for(config: GatewayConfig) -> GatewaySchema:
    """The schema ``config`` asks for; ConfigError when a trusted-documents manifest cannot
    be used."""
    try:
        return gateway_schema(
            Limits(
                config.max_query_depth, config.max_aliases, config.max_tokens,
                config.max_selections, config.max_repeated_selections,
            ),
            introspection=config.introspection_enabled,
            suggestions=config.suggestions_enabled,
            persisted=PersistedDocumentsSetup(
                read_manifests(config.trusted_document_paths),
                only=config.trusted_documents_only,
                automatic=config.persisted_queries,
                max_bytes=config.persisted_queries_max_bytes,
            ),
        )  # fmt: skip
    except ManifestError as error:
        raise ConfigError(f"invalid configuration: EHRGW_TRUSTED_DOCUMENTS: {error}") from None


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway over the MongoDB at ``config.mongodb_url`` (required)."""
    if not config.mongodb_url:
        raise ValueError("create_app needs config.mongodb_url; the CLI starts the embedded server")
    logs.lean_records()
    services: dict[str, Services] = {}
    issuer_client: httpx.AsyncClient | None = None
    if config.auth_issuer is None:
        verifier = dev_tokens.verifier(config.data_dir)
    else:
        issuer_client = httpx.AsyncClient(
            timeout=config.outbound_timeout_s, trust_env=False, follow_redirects=False
        )
        verifier = TokenVerifier(
            config.auth_issuer,
            config.auth_audience,
            IssuerKeys(config.auth_issuer, issuer_client),
            ClaimNames(tenants=config.auth_tenants_claim, roles=config.auth_roles_claim),
        )
    schema = schema_for(config)

    def feed_running() -> bool:
        current = services.get("current")
        return current is not None and current.feed.running.is_set()

    # The request deadline (EHRGW_DB_TIMEOUT_MS) covers every database call of an operation.
    schema.database_deadline_s = config.db_timeout_ms / 1000
    health = schema.health = DatabaseHealth()
    settings_cache = SettingsCache(live=feed_running)
    responses = ResponseCache(settings_cache) if config.response_cache else None
    metrics = GatewayMetrics()
    denials = Denials()

    def caches() -> dict[str, tuple[int, int, int]]:
        known = {"settings": settings_cache}
        sizes = {name: (len(c), c.hits, c.misses) for name, c in known.items()}
        persisted = schema.persisted  # by hash: found (hit) or not (miss)
        sizes["persisted_documents"] = (len(persisted), persisted.hits, persisted.misses)
        if responses is not None:
            sizes["responses"] = (len(responses), responses.hits, responses.misses)
        return sizes

    metrics.watch(
        LiveState(
            subscriptions=lambda: schema.multiplexer.subscriptions,
            feed_streams=lambda: (
                current.context.broker.subscribers if (current := services.get("current")) else 0
            ),
            feed_running=feed_running,
            feed_reconnects=lambda: (
                current.feed.reconnects if (current := services.get("current")) else 0
            ),
            request_database_errors=lambda: schema.database_errors,
            caches=caches,
            denials=lambda: dict(denials.by_kind),
            coalesced_denials=lambda: denials.coalesced,
            history_pages=lambda: (
                current.context.history_reads.pages if (current := services.get("current")) else 0
            ),
            repository=lambda: (
                current.context.repository if (current := services.get("current")) else None
            ),
            database_up=lambda: health.reachable,
        )
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert config.mongodb_url is not None
        outages = ServerOutages()
        client = connect(config.mongodb_url, timeout_ms=config.db_timeout_ms, outages=outages)
        secret_box = (
            SecretBox.from_base64(config.encryption_key, config.previous_encryption_keys)
            if config.encryption_key
            else SecretBox.from_data_dir(config.data_dir)
        )
        repository = SettingsRepository(client, config.database, secret_box.chain)
        await repository.prepare()
        health.note_reachable()  # it just answered
        health.start(client)
        # Before anything is served or cached: no plaintext credential, no unbound fingerprint.
        await seal_stored_secrets(client[config.database], secret_box)
        deployment = Deployment(
            public_base_url=config.base_url,
            identifier_defaults=config.identifier_defaults,
            allow_insecure_http=config.allow_insecure_http,
        )
        broker = Broker()
        observations = JkuObservations(ObservedJkuStore(repository.database))
        observations.start()

        def publish(entry: HistoryEntry) -> None:
            settings_cache.changed(entry.tenant_id, entry.version)
            broker.publish(entry)

        feed = ChangeFeed(repository, publish, observe_lag=metrics.feed_lag, outages=outages)
        feed.start()
        repository.repairs.start()  # finishes writes that stopped after their commit point
        outbound = Outbound.open(
            OutboundPolicy(
                allow_insecure_http=config.allow_insecure_http,
                allow_private=config.outbound_allow_private,
                timeout_s=config.outbound_timeout_s,
            )
        )
        services["current"] = Services(
            client,
            Context(
                repository,
                secret_box,
                deployment,
                broker,
                outbound,
                settings_cache=settings_cache,
                denials=denials,
                history_reads=HistoryReads(deadline_s=config.db_timeout_ms / 1000),
                jku_observations=observations,
            ),
            feed,
        )
        try:
            yield
        finally:
            broker.close()  # open subscriptions complete
            services.pop("current", None)
            with contextlib.suppress(PyMongoError, TimeoutError):
                async with asyncio.timeout(config.shutdown_close_s / 4):
                    await observations.stop()  # what was counted since the last write
            await outbound.client.aclose()
            if issuer_client is not None:
                await issuer_client.aclose()
            await _close_database(
                health, repository.repairs, feed, client, within=config.shutdown_close_s
            )

    async def healthz(request: Request) -> Response:
        current = services.get("current")
        return JSONResponse(
            {
                "status": "ok",
                "subscribers": schema.multiplexer.subscriptions,
                # Streams the change feed serves: one per group of identical subscriptions.
                "feedSubscribers": current.context.broker.subscribers if current else 0,
                "changeFeed": "running" if current and current.feed.running.is_set() else "down",
            }
        )

    async def readyz(request: Request) -> Response:
        """Ready to serve: the database answers and the change feed runs (else 503, and why).
        Answered from what the gateway keeps (a ping every second, what requests and writes
        met), never from a round trip of its own, which a stalled database would hold: an
        orchestrator's probe gets its answer at once. Anyone may ask: the database's address
        and the driver's errors stay in the log."""
        current = services.get("current")
        problems = []
        if current is None:
            problems.append("starting")
        else:
            problems.extend(health.problems())
            if not current.feed.running.is_set():
                problems.append("change feed: down")
            problems.extend(current.context.repository.write_failures.problems())
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    metrics_token = (
        config.metrics_token.get_secret_value().encode() if config.metrics_token else None
    )

    async def prometheus(request: Request) -> Response:
        """The metrics, to a scraper holding EHRGW_METRICS_TOKEN. They name operations, tenants'
        traffic and the database's health: not for anyone who can reach the port. Without a
        token only development mode (loopback only) serves them."""
        if metrics_token is not None or not config.development:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if not (
                metrics_token is not None
                and scheme.lower() == "bearer"
                and hmac.compare_digest(presented.strip().encode(), metrics_token)
            ):
                return JSONResponse(
                    {"error": "unauthorized"},
                    status_code=401,
                    headers={"www-authenticate": 'Bearer realm="metrics"'},
                )
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def tenant_jwks(request: Request) -> Response:
        current = services.get("current")
        keys = None
        if current is not None:
            # A key set is fetched by relying parties that wait for it: under the one request
            # deadline, as GraphQL requests are, and a clear retryable answer when it runs out.
            try:
                with database_deadline(config.db_timeout_ms / 1000):
                    keys = await published_jwks(current.context, request.path_params["tenant_id"])
            except PyMongoError as error:
                if not is_unavailable(error):
                    raise
                logger.warning("database unavailable: tenant key set: %s", error_summary(error))
                schema.database_errors += 1
                health.note_unreachable(reason(error))
                return JSONResponse(
                    {"error": "unavailable"}, status_code=503, headers={"retry-after": "1"}
                )
        if keys is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(keys, headers={"cache-control": "public, max-age=300"})

    observe = base_path_route(
        lambda: current.context if (current := services.get("current")) else None
    )

    async def base_path(request: Request) -> Response:
        try:
            with database_deadline(config.db_timeout_ms / 1000):
                return await observe(request)
        except PyMongoError as error:
            if not is_unavailable(error):
                raise
            logger.warning("database unavailable: base path URL: %s", error_summary(error))
            schema.database_errors += 1
            health.note_unreachable(reason(error))
            return JSONResponse(
                {"error": "unavailable"}, status_code=503, headers={"retry-after": "1"}
            )

    graphql = GatewayGraphQL(services, config, schema, verifier)
    gated = RequestGate(
        graphql,
        verifier,
        max_body_bytes=config.max_body_bytes,
        ide=config.introspection_enabled,
        responses=responses,
        metrics=metrics,
        access_log=config.access_log,
    )
    return Starlette(
        routes=[
            Route("/graphql", gated, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", gated),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
            Route("/tenants/{tenant_id}/.well-known/jwks.json", tenant_jwks),
            # The external gateway's base path URL (resolvers.gateway.base_path_url), and the
            # endpoints Epic calls beneath it.
            Route("/gateways/{gateway_id}", base_path, methods=["GET", "POST"]),
            Route("/gateways/{gateway_id}/{endpoint:path}", base_path, methods=["GET", "POST"]),
            *(
                [Mount(f"/{graphiql.ASSET_PATH}", app=graphiql.assets())]
                if config.introspection_enabled
                else []
            ),
        ],
        middleware=[
            # Without allowed origins CORS would refuse every cross-origin request anyway, and
            # same-origin ones need nothing: the middleware is left out rather than run for
            # nothing.
            *(
                [
                    Middleware(
                        CORSMiddleware,
                        allow_origins=config.cors_origin_list,
                        allow_methods=["GET", "POST"],
                        allow_headers=config.cors_allow_header_list,
                        expose_headers=["x-request-id"],
                        max_age=600,
                    )
                ]
                if config.cors_origin_list
                else []
            ),
            Middleware(GraphQLFirst, graphql=gated),
        ],
        lifespan=lifespan,
    )


async def _close_database(
    health: DatabaseHealth,
    repairs: Repairs,
    feed: ChangeFeed,
    client: AsyncMongoClient[dict[str, Any]],
    *,
    within: float,
) -> None:
    """Stop what talks to the database, within ``within`` seconds in all: a database that is
    stalled or gone holds the change feed's read and the client's goodbye to the server until
    the driver gives up, and a stopping gateway must not wait for that
    (EHRGW_SHUTDOWN_TIMEOUT_S). What does not stop in time is left to the process's exit."""
    try:
        async with asyncio.timeout(within):
            await health.stop()
            await asyncio.wait_for(repairs.stop(), within / 4)
            await asyncio.wait_for(feed.stop(), within / 4)
            with database_deadline(within / 4):
                await client.close()
    except TimeoutError:
        logger.warning("the database connections did not close within %.1fs", within)


def app_from_environment() -> Starlette:
    """The app as each worker of ``serve --workers N`` builds it: configured by the environment
    (the serving process has put the database's address there)."""
    config = load_config()
    set_read_timeout(config.request_read_timeout_s)  # this worker's uvicorn protocol
    return create_app(config)
