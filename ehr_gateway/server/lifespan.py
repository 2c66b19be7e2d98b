"""The gateway's lifespan: at startup it connects to the database, seals stored secrets and
starts the change feed, the repairs and the outbound client; at shutdown it stops them, within
EHRGW_SHUTDOWN_TIMEOUT_S."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from starlette.applications import Starlette

from ehr_gateway.resolvers.context import Context, Deployment
from ehr_gateway.runtime.broker import Broker
from ehr_gateway.runtime.history_reads import HistoryReads
from ehr_gateway.runtime.jku_observation_log import JkuObservations, epic_gateway_id
from ehr_gateway.runtime.outbound import Outbound, OutboundPolicy
from ehr_gateway.server.state import Services, gateway_of
from ehr_gateway.storage.change_feed import ChangeFeed
from ehr_gateway.storage.client import (
    ServerOutages,
    connect,
    database_deadline,
)
from ehr_gateway.storage.health import DatabaseHealth
from ehr_gateway.storage.legacy import warn_of_unadopted_history
from ehr_gateway.storage.migrations import refresh_directory, seal_stored_secrets
from ehr_gateway.storage.observations import ObservedJkuStore
from ehr_gateway.storage.repair import Repairs
from ehr_gateway.storage.repository import HistoryEntry, SettingsRepository
from ehr_gateway.storage.secrets import SecretBox

logger = logging.getLogger("ehr_gateway.http")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    gateway = gateway_of(app)
    config, health = gateway.config, gateway.health
    assert config.mongodb_url is not None
    outages = ServerOutages()
    client = connect(config.mongodb_url, timeout_ms=config.db_timeout_ms, outages=outages)
    secret_box = (
        SecretBox.from_base64(config.encryption_key, config.previous_encryption_keys)
        if config.encryption_key
        else SecretBox.from_data_dir(config.data_dir)
    )
    repository = SettingsRepository(
        client, config.database, secret_box.chain, config.identifier_defaults
    )
    await repository.prepare()
    health.note_reachable()  # it just answered
    health.start(client)
    # Before anything is served or cached: no plaintext credential, no unbound fingerprint.
    await seal_stored_secrets(client[config.database], secret_box)
    await warn_of_unadopted_history(repository.database)
    # Before the directory is served: every row assessed on this gateway's basis.
    refreshed = await refresh_directory(repository)
    if refreshed:
        logger.info("tenant directory: %d rows assessed again", refreshed)
    deployment = Deployment(
        public_base_url=config.base_url,
        identifier_defaults=config.identifier_defaults,
        allow_insecure_http=config.allow_insecure_http,
        clock_skew_s=config.clock_skew_s,
    )
    broker = Broker()
    observations = JkuObservations(ObservedJkuStore(repository.database))
    observations.start()

    def publish(entry: HistoryEntry) -> None:
        gateway.settings_cache.changed(entry.tenant_id, entry.version)
        observations.gateway_ids.set(
            entry.tenant_id, entry.version, epic_gateway_id(entry.settings)
        )
        broker.publish(entry)

    feed = ChangeFeed(
        repository,
        publish,
        observe_lag=gateway.metrics.feed_lag,
        outages=outages,
        read_s=config.db_timeout_ms / 1000,
        stall_s=config.feed_stall_s,
    )
    feed.start()
    # After the feed starts: what changes while this loads, the feed tells too (by version,
    # so neither a replayed entry nor this read undoes a newer one).
    observations.gateway_ids.load(await repository.epic_gateway_ids())
    repository.repairs.start()  # finishes writes that stopped after their commit point
    outbound = Outbound.open(
        OutboundPolicy(
            allow_insecure_http=config.allow_insecure_http,
            allow_private=config.outbound_allow_private,
            timeout_s=config.outbound_timeout_s,
        )
    )
    gateway.services = Services(
        client,
        Context(
            repository,
            secret_box,
            deployment,
            broker,
            outbound,
            settings_cache=gateway.settings_cache,
            denials=gateway.denials,
            history_reads=HistoryReads(deadline_s=config.db_timeout_ms / 1000),
            jku_observations=observations,
        ),
        feed,
    )
    try:
        yield
    finally:
        broker.close()  # open subscriptions complete
        gateway.services = None
        with contextlib.suppress(PyMongoError, TimeoutError):
            async with asyncio.timeout(config.shutdown_close_s / 4):
                await observations.stop()  # what was counted since the last write
        await outbound.client.aclose()
        if gateway.issuer_client is not None:
            await gateway.issuer_client.aclose()
        await _close_database(
            health, repository.repairs, feed, client, within=config.shutdown_close_s
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
