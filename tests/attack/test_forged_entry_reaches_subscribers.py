"""A history entry inserted by a database writer without the key (a made-up hash and MAC) is
never applied to the document nor served by a read (tests/faults/test_forged_orphan.py). The
change feed still hands it to the broker, and every subscriber of the tenant, runtime services
above all, receives its settings as the tenant's new configuration: a forged value delivered
live, and a version the gateway refuses to apply announced as stored."""

from __future__ import annotations

import asyncio

from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.faults.test_forged_orphan import (  # noqa: F401
    FORGED,
    forge_next_version,
    gateway,
    store,
)
from tests.gql.test_configuration_changed import new_tenant
from tests.processes import GatewayProcess, TransportWsClient

CONFIGURATION_CHANGED = """
subscription ConfigurationChanged($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId) {
    version
    settings { ehr { ... on EllkaySettings { waitlistingStatusName } } }
  }
}
"""
# Generous: the feed announces an insert within a second; the bound only ends a broken run.
DELIVERED_WITHIN_S = 15


async def test_a_subscriber_never_receives_a_forged_history_entry(
    gateway: GatewayProcess,  # noqa: F811
    database: EmbeddedMongo,
) -> None:
    tenant_id = new_tenant(gateway)  # version 1
    store(gateway, tenant_id, "genuine")  # version 2
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    try:
        await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id)
        await asyncio.sleep(1)  # subscribed before the forgery lands
        forge_next_version(database.url, tenant_id)

        received = []
        try:
            while True:
                received.append(await subscriber.next_data("1", within=DELIVERED_WITHIN_S))
        except TimeoutError:
            pass
    finally:
        await subscriber.connection.close()

    delivered = [
        change["configurationChanged"]["settings"]["ehr"]["waitlistingStatusName"]
        for change in received
    ]
    assert FORGED not in delivered, received
