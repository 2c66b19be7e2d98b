"""What the app holds (``app.state.gateway``): built by create_app, opened and closed by the
lifespan, read by the endpoints and the GraphQL view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from pymongo import AsyncMongoClient
from starlette.applications import Starlette

from ehr_gateway.gql.execution import GatewaySchema
from ehr_gateway.resolvers.context import Context
from ehr_gateway.runtime.denials import Denials
from ehr_gateway.runtime.identity import TokenVerifier
from ehr_gateway.runtime.settings_cache import SettingsCache
from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.server.metrics import GatewayMetrics
from ehr_gateway.server.response_cache import ResponseCache
from ehr_gateway.storage.change_feed import ChangeFeed
from ehr_gateway.storage.health import DatabaseHealth


@dataclass
class Services:
    """What the app holds between startup and shutdown."""

    client: AsyncMongoClient[dict[str, Any]]
    context: Context
    feed: ChangeFeed


@dataclass
class Gateway:
    """One gateway: its configuration, its schema and what it keeps for as long as it runs."""

    config: GatewayConfig
    schema: GatewaySchema
    verifier: TokenVerifier
    # The client the verifier fetches the issuer's keys with (None: development tokens).
    issuer_client: httpx.AsyncClient | None
    health: DatabaseHealth = field(default_factory=DatabaseHealth)
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    denials: Denials = field(default_factory=Denials)
    services: Services | None = None  # between startup and shutdown (server.lifespan)
    settings_cache: SettingsCache = field(init=False)
    responses: ResponseCache | None = field(init=False)

    def __post_init__(self) -> None:
        self.settings_cache = SettingsCache(live=self.feed_running)
        self.responses = ResponseCache(self.settings_cache) if self.config.response_cache else None

    def feed_running(self) -> bool:
        return self.services is not None and self.services.feed.running.is_set()

    def started(self) -> Services:
        """The services; LookupError before startup and after shutdown."""
        if self.services is None:
            raise LookupError("the gateway is not running")
        return self.services


def gateway_of(app: Starlette) -> Gateway:
    return cast(Gateway, app.state.gateway)
