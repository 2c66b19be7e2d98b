"""Attacks by a database writer without the deployment's key that the document seal and the
history chain do not yet stop (found by an attack pass; each test fails on the code as it is).

1. Replaying an older, properly sealed settings document of the same tenant: its seal verifies,
   so a replica that loads it serves the old version's values (e.g. a URL or secret since
   replaced) although history has moved on.
2. The tenant directory (`tenants`) reads the settings document's directory row, version and
   updatedBy without checking the seal: an edited row is listed.
3. `settingsHistory` serves history entries without verifying them: an old entry's settings
   edited in the database are shown as what was stored.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway

SELECT_EPIC = """
mutation SelectEpic($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
SET_FHIR_PREFIX = """
mutation SetFhirPrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) { __typename }
}
"""
READ_FHIR_PREFIX = """
query ReadFhirPrefix($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { urlPrefix } }
  }
}
"""
LIST_TENANTS = """
query ListTenants {
  tenants(first: 200) { items { tenantId version ready missingCount changedBy } }
}
"""
READ_HISTORY = """
query ReadHistory($tenantId: ID!) {
  settingsHistory(tenantId: $tenantId, first: 10) {
    versions { version settings { fhir { ... on EpicFhirSettings { urlPrefix } } } }
  }
}
"""
OLD_PREFIX = "/FHIR/R4"
NEW_PREFIX = "/FHIR/R4-new"
FOREIGN_PREFIX = "/attacker/FHIR"


async def _collection(database_url: str, name: str) -> tuple[Any, Any]:
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    return writer, writer[TEST_DATABASE][name]


async def test_an_older_sealed_document_replayed_is_not_served(
    database_url: str, gateway: Gateway, tmp_path: Path, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=OLD_PREFIX)
    writer, settings = await _collection(database_url, "tenant_settings")
    try:
        old = await settings.find_one({"_id": tenant_id})  # version 2, sealed by the gateway
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix=NEW_PREFIX)
        await settings.replace_one({"_id": tenant_id}, old)  # the writer puts version 2 back
    finally:
        await writer.close()

    # A replica started after the replay (a restart, a new pod): it has not seen version 3.
    async for later in open_gateway(gateway_config(database_url, tmp_path)):
        read = await later.execute(READ_FHIR_PREFIX, tenantId=tenant_id)

    assert read["integrationSettings"] == {"version": 3, "fhir": {"urlPrefix": NEW_PREFIX}}


async def test_an_edited_directory_row_is_not_listed(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    writer, settings = await _collection(database_url, "tenant_settings")
    try:
        document = await settings.find_one({"_id": tenant_id})
        assert document is not None
        derived = next(key for key, value in document.items() if isinstance(value, dict)
                       and "ready" in value)  # fmt: skip
        await settings.update_one(
            {"_id": tenant_id},
            {"$set": {f"{derived}.ready": True, f"{derived}.missing": 0,
                      "version": 99, "updatedBy": "someone-else"}},
        )  # fmt: skip
    finally:
        await writer.close()

    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    listed = await viewer.execute(LIST_TENANTS)

    row = next(item for item in listed["tenants"]["items"] if item["tenantId"] == tenant_id)
    assert row["version"] == 1
    assert row["ready"] is False
    assert row["changedBy"] != "someone-else"


CREATE_GATEWAY = """
mutation Gateway($tenantId: ID!) {
  createExternalGateway(
    tenantId: $tenantId
    connection: {name: "gw", baseUrl: "https://fhir.hospital.example/api", environment: PRODUCTION}
  ) {
    __typename
    ... on SettingsSaved { settings { externalGateway { externalGatewayId } } }
  }
}
"""
RESOLVE_GATEWAY = """
query Resolve($id: ID!) { resolveExternalGateway(externalGatewayId: $id) { tenantId } }
"""
GATEWAY_ID_PATH = "providers.EPIC.externalGateway.externalGatewayId"


async def test_an_id_edited_into_another_document_does_not_hide_the_tenant_it_belongs_to(
    database_url: str, gateway: Gateway
) -> None:
    """One edited document (tenant A given tenant B's gateway id) makes find_by_gateway_id
    check A's document, see the id is not in A's verified settings, and move on to the next
    provider rather than the next document: B's own id no longer resolves."""
    ids: dict[str, str] = {}
    for tenant in ("tenant-a-" + uuid.uuid4().hex[:6], "tenant-b-" + uuid.uuid4().hex[:6]):
        await gateway.execute(SELECT_EPIC, tenantId=tenant)
        created = await gateway.execute(CREATE_GATEWAY, tenantId=tenant)
        saved = created["createExternalGateway"]["settings"]
        ids[tenant] = saved["externalGateway"]["externalGatewayId"]
    first, owner = list(ids)
    writer, settings = await _collection(database_url, "tenant_settings")
    try:
        await settings.update_one({"_id": first}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
    finally:
        await writer.close()

    resolved = await gateway.execute(RESOLVE_GATEWAY, id=ids[owner])

    assert resolved["resolveExternalGateway"] == {"tenantId": owner}
