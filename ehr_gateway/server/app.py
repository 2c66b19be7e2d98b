"""The Starlette application: GraphQL at /graphql (server.graphql_view, behind the request gate);
liveness, readiness, metrics, tenants' key sets and the external gateway's base path URL beside
it (server.endpoints); startup and shutdown in server.lifespan."""

from __future__ import annotations

import gc
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ehr_gateway.gql import graphiql
from ehr_gateway.gql.execution import GatewaySchema
from ehr_gateway.gql.limits import Limits
from ehr_gateway.gql.persisted_documents import (
    ManifestError,
    PersistedDocumentsSetup,
    read_manifests,
)
from ehr_gateway.gql.schema import gateway_schema
from ehr_gateway.runtime import dev_tokens
from ehr_gateway.runtime.identity import ClaimNames, IssuerKeys, TokenVerifier
from ehr_gateway.runtime.outbound import NoCookies, OutboundPolicy
from ehr_gateway.server import console, endpoints, logs
from ehr_gateway.server.config import ConfigError, GatewayConfig, load_config
from ehr_gateway.server.fast_path import FastPath
from ehr_gateway.server.gate import RequestGate, response_started
from ehr_gateway.server.graphql_view import GatewayGraphQL
from ehr_gateway.server.http_protocol import set_limits
from ehr_gateway.server.lifespan import lifespan
from ehr_gateway.server.metrics import LiveState
from ehr_gateway.server.state import Gateway


class GatewayApp(Starlette):
    """Starlette, with GraphQL HTTP requests (any method on /graphql) handed straight to the
    request gate (behind CORS, when configured), ahead of Starlette's middleware stack and
    router, which every settings read would otherwise pass through. The gate and Strawberry
    answer every expected failure themselves, a method other than GET and POST included (405 as
    a GraphQL response, which the router's plain text is not); anything else gets the answer
    Starlette's ServerErrorMiddleware gives it, and is raised on for the server to log."""

    graphql: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        graphql = self.graphql
        if graphql is None or scope["type"] != "http" or scope["path"] != "/graphql":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            await graphql(scope, receive, send)
        except Exception:
            if not response_started(scope):
                await _INTERNAL_ERROR(scope, receive, send)
            raise


# ServerErrorMiddleware's answer (debug off) to an error nothing else handled: plain text, on the
# connection as it was, without the gate's headers.
_INTERNAL_ERROR = PlainTextResponse("Internal Server Error", status_code=500)


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
            compiled_reads=config.compiled_reads,
        )  # fmt: skip
    except ManifestError as error:
        raise ConfigError(f"invalid configuration: EHRGW_TRUSTED_DOCUMENTS: {error}") from None


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway over the MongoDB at ``config.mongodb_url`` (required)."""
    if not config.mongodb_url:
        raise ValueError("create_app needs config.mongodb_url; the CLI starts the embedded server")
    logs.lean_records()
    issuer_client: httpx.AsyncClient | None = None
    if config.auth_issuer is None:
        verifier = dev_tokens.verifier(config.data_dir, config.clock_skew_s)
    else:
        # No cookies, as on the outbound client: reading the issuer's keys needs none, and a
        # session or stickiness cookie the issuer set would go back on every later read.
        issuer_client = httpx.AsyncClient(
            timeout=config.outbound_timeout_s,
            trust_env=False,
            follow_redirects=False,
            cookies=NoCookies(),
        )
        verifier = TokenVerifier(
            config.auth_issuer,
            config.auth_audience,
            IssuerKeys(
                config.auth_issuer,
                issuer_client,
                # The issuer is the deployment's, on whichever network it chose: no address
                # check, and plain http only where its own URL is (or the deployment allows
                # it), so that an https issuer's key set cannot be read over http.
                OutboundPolicy(
                    allow_insecure_http=config.allow_insecure_http
                    or config.auth_issuer.lower().startswith("http://"),
                    allow_private=True,
                    timeout_s=config.outbound_timeout_s,
                ),
            ),
            ClaimNames(tenants=config.auth_tenants_claim, roles=config.auth_roles_claim),
            leeway_s=config.clock_skew_s,
        )
    gateway = Gateway(config, schema_for(config), verifier, issuer_client)
    # The request deadline (EHRGW_DB_TIMEOUT_MS) covers every database call of an operation.
    gateway.schema.database_deadline_s = config.db_timeout_ms / 1000
    gateway.schema.health = gateway.health
    gateway.metrics.watch(_live_state(gateway))
    gated = RequestGate(
        GatewayGraphQL(gateway),
        verifier,
        max_body_bytes=config.max_body_bytes,
        ide=config.introspection_enabled,
        responses=gateway.responses,
        metrics=gateway.metrics,
        access_log=config.access_log,
        fast=None
        if gateway.schema.fast_reads is None
        else FastPath(gateway, gateway.schema.fast_reads),
    )
    # Without allowed origins CORS would refuse every cross-origin request anyway, and same-origin
    # ones need nothing: the middleware is left out rather than run for nothing.
    cors: dict[str, Any] | None = (
        {
            "allow_origins": config.cors_origin_list,
            "allow_methods": ["GET", "POST"],
            "allow_headers": config.cors_allow_header_list,
            "expose_headers": ["x-request-id"],
            "max_age": 600,
        }
        if config.cors_origin_list
        else None
    )
    app = GatewayApp(
        routes=[
            Route("/graphql", gated, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", gated),
            Route("/healthz", endpoints.healthz),
            Route("/readyz", endpoints.readyz),
            Route("/metrics", endpoints.prometheus),
            Route("/tenants/{tenant_id}/.well-known/jwks.json", endpoints.tenant_jwks),
            Route("/gateways/{gateway_id}", endpoints.base_path, methods=["GET", "POST"]),
            Route(
                "/gateways/{gateway_id}/{endpoint:path}",
                endpoints.base_path,
                methods=["GET", "POST"],
            ),
            *console.routes(config),
            *(
                [Mount(f"/{graphiql.ASSET_PATH}", app=graphiql.assets())]
                if config.introspection_enabled
                else []
            ),
        ],
        middleware=[] if cors is None else [Middleware(CORSMiddleware, **cors)],
        lifespan=lifespan,
    )
    # GraphQL over HTTP behind the same CORS policy as every other route.
    app.graphql = gated if cors is None else CORSMiddleware(gated, **cors)
    app.state.gateway = gateway
    return app


def _live_state(gateway: Gateway) -> LiveState:
    """What the metrics read at each scrape."""
    schema = gateway.schema

    def caches() -> dict[str, tuple[int, int, int]]:
        known = {"settings": gateway.settings_cache}
        sizes = {name: (len(c), c.hits, c.misses) for name, c in known.items()}
        persisted = schema.persisted  # by hash: found (hit) or not (miss)
        sizes["persisted_documents"] = (len(persisted), persisted.hits, persisted.misses)
        if (responses := gateway.responses) is not None:
            sizes["responses"] = (len(responses), responses.hits, responses.misses)
        return sizes

    return LiveState(
        subscriptions=lambda: schema.multiplexer.subscriptions,
        feed_streams=lambda: (
            current.context.broker.subscribers if (current := gateway.services) else 0
        ),
        feed_running=gateway.feed_running,
        feed_reconnects=lambda: current.feed.reconnects if (current := gateway.services) else 0,
        request_database_errors=lambda: schema.database_errors,
        caches=caches,
        denials=lambda: dict(gateway.denials.by_kind),
        coalesced_denials=lambda: gateway.denials.coalesced,
        history_pages=lambda: (
            current.context.history_reads.pages if (current := gateway.services) else 0
        ),
        repository=lambda: current.context.repository if (current := gateway.services) else None,
        database_up=lambda: gateway.health.reachable,
    )


def app_from_environment() -> Starlette:
    """The app as each worker of ``serve --workers N`` builds it: configured by the environment
    (the serving process has put the database's address there)."""
    config = load_config()
    set_limits(
        config.request_read_timeout_s, config.max_body_bytes
    )  # this worker's uvicorn protocol
    app = create_app(config)
    freeze_startup_heap()
    return app


# Net container allocations between collections of the youngest generation (Python's default: 700).
_YOUNG_COLLECTION_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Called by a served process once its app is built. What it built (the schema, models,
    GraphQL types: some 140,000 objects) lives as long as the process, yet each full collection
    of Python's garbage collector would walk all of it again: about 0.8 s on a busy 2-core
    machine, every request in flight waiting, the tail of uncached reads. Frozen (gc.freeze),
    those objects are left out of every collection. (Not for apps built by tests in one process:
    a frozen app that is dropped later keeps its reference cycles.)

    And collections of young objects are made rarer: at the default (one per 700 net container
    allocations) a settings write set off one every few writes, each about 0.8 ms, none of them
    finding garbage (the cycles a request leaves are found by the next generation's); 0.15 ms of
    the gateway's CPU per write in all, against 0.03 ms at 10,000 (bench/profile_writes.py's
    writes with a gc callback timing each collection)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
