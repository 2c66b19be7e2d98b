"""The Starlette application: GraphQL at /graphql, liveness at /healthz."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from gql.config import GatewayConfig
from gql.multiplex import SharedPayloads
from gql.schema import schema
from gql.websocket import LegacyWsHandler, TransportWsHandler
from resolvers.broker import Broker
from resolvers.context import Context, Deployment
from resolvers.oauth import published_jwks
from resolvers.outbound import Outbound, OutboundPolicy
from storage.change_feed import ChangeFeed
from storage.client import connect
from storage.repository import SettingsRepository
from storage.secrets import SecretBox


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

    def __init__(self, services: dict[str, Services], config: GatewayConfig) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            connection_init_wait_timeout=timedelta(seconds=config.ws_init_timeout_s),
            max_subscriptions_per_connection=config.ws_max_subscriptions,
        )
        self._services = services
        self._payloads = SharedPayloads()

    def encode_json(self, data: object) -> str:
        # Subscription results shared by a group are serialised once for all its members.
        if isinstance(data, dict):
            return self._payloads.encode(data, _json)
        return _json(data)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return self._services["current"].context


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway over the MongoDB at ``config.mongodb_url`` (required)."""
    if not config.mongodb_url:
        raise ValueError("create_app needs config.mongodb_url; the CLI starts the embedded server")
    services: dict[str, Services] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        assert config.mongodb_url is not None
        client = connect(config.mongodb_url, timeout_ms=config.db_timeout_ms)
        repository = SettingsRepository(client, config.database)
        await repository.prepare()
        secret_box = (
            SecretBox.from_base64(config.encryption_key)
            if config.encryption_key
            else SecretBox.from_data_dir(config.data_dir)
        )
        deployment = Deployment(
            public_base_url=config.base_url,
            identifier_defaults=config.identifier_defaults,
            allow_insecure_http=config.allow_insecure_http,
        )
        broker = Broker()
        feed = ChangeFeed(repository, broker.publish)
        feed.start()
        outbound = Outbound.open(
            OutboundPolicy(
                allow_insecure_http=config.allow_insecure_http,
                allow_private=config.outbound_allow_private,
                timeout_s=config.outbound_timeout_s,
            )
        )
        services["current"] = Services(
            client, Context(repository, secret_box, deployment, broker, outbound), feed
        )
        try:
            yield
        finally:
            broker.close()  # open subscriptions complete
            await feed.stop()
            services.pop("current", None)
            await outbound.client.aclose()
            await client.close()

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

    async def tenant_jwks(request: Request) -> Response:
        current = services.get("current")
        keys = None
        if current is not None:
            keys = await published_jwks(current.context, request.path_params["tenant_id"])
        if keys is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(keys, headers={"cache-control": "public, max-age=300"})

    graphql = GatewayGraphQL(services, config)
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/tenants/{tenant_id}/.well-known/jwks.json", tenant_jwks),
        ],
        lifespan=lifespan,
    )
