"""The routes beside /graphql: liveness, readiness, metrics, a tenant's published key set and
the external gateway's base path URL. Each reads the gateway from ``request.app.state``
(server.state), as Starlette's own endpoints are written."""

from __future__ import annotations

import hmac
import logging

from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_gateway.resolvers.oauth import published_jwks
from ehr_gateway.server import base_path as base_path_url
from ehr_gateway.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ehr_gateway.server.state import Gateway, gateway_of
from ehr_gateway.storage.client import database_deadline, error_summary, is_unavailable, reason

logger = logging.getLogger("ehr_gateway.http")


async def healthz(request: Request) -> Response:
    gateway = gateway_of(request.app)
    current = gateway.services
    return JSONResponse(
        {
            "status": "ok",
            "subscribers": gateway.schema.multiplexer.subscriptions,
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
    gateway = gateway_of(request.app)
    current = gateway.services
    problems = []
    if current is None:
        problems.append("starting")
    else:
        problems.extend(gateway.health.problems())
        if not current.feed.running.is_set():
            problems.append("change feed: down")
        problems.extend(current.context.repository.write_failures.problems())
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


async def prometheus(request: Request) -> Response:
    """The metrics, to a scraper holding EHRGW_METRICS_TOKEN. They name operations, tenants'
    traffic and the database's health: not for anyone who can reach the port. Without a
    token only development mode (loopback only) serves them."""
    gateway = gateway_of(request.app)
    config = gateway.config
    token = config.metrics_token.get_secret_value().encode() if config.metrics_token else None
    if token is not None or not config.development:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if not (
            token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(presented.strip().encode(), token)
        ):
            return JSONResponse(
                {"error": "unauthorized"},
                status_code=401,
                headers={"www-authenticate": 'Bearer realm="metrics"'},
            )
    return Response(gateway.metrics.render(), media_type=METRICS_CONTENT_TYPE)


async def tenant_jwks(request: Request) -> Response:
    """The public keys of a tenant's Epic OAuth client (oauthJwksUrl)."""
    gateway = gateway_of(request.app)
    current = gateway.services
    keys = None
    if current is not None:
        # A key set is fetched by relying parties that wait for it: under the one request
        # deadline, as GraphQL requests are, and a clear retryable answer when it runs out.
        try:
            with database_deadline(gateway.config.db_timeout_ms / 1000):
                keys = await published_jwks(current.context, request.path_params["tenant_id"])
        except PyMongoError as error:
            if not is_unavailable(error):
                raise
            return _unavailable(gateway, "tenant key set", error)
    if keys is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(keys, headers={"cache-control": "public, max-age=300"})


async def base_path(request: Request) -> Response:
    """The external gateway's base path URL (resolvers.gateway.base_path_url), and the
    endpoints Epic calls beneath it."""
    gateway = gateway_of(request.app)
    current = gateway.services
    try:
        with database_deadline(gateway.config.db_timeout_ms / 1000):
            return await base_path_url.observe(request, current.context if current else None)
    except PyMongoError as error:
        if not is_unavailable(error):
            raise
        return _unavailable(gateway, "base path URL", error)


def _unavailable(gateway: Gateway, route: str, error: PyMongoError) -> Response:
    """The database was away: logged, counted and told to the health check, and a 503 the
    caller may retry."""
    logger.warning("database unavailable: %s: %s", route, error_summary(error))
    gateway.schema.database_errors += 1
    gateway.health.note_unreachable(reason(error))
    return JSONResponse({"error": "unavailable"}, status_code=503, headers={"retry-after": "1"})
