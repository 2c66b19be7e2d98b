"""A database writer (no key) edits a tenant's settings document, not its history: the document
carries no MAC, and a write starts from it. The next ordinary write to any other block (here the
headers) then stores the edited value in a new, properly chained and MAC'd history version, and
the audit log shows only the header change. The edit is a value today's rules refuse (a FHIR
prefix that moves the host to the attacker's), read back under the stored-value rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway

SELECT_EPIC = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
SET_FHIR = """
mutation SetFhir($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) { __typename }
}
"""
SET_CLIENT_ID = """
mutation Headers($tenantId: ID!) {
  updateHeaderSettings(tenantId: $tenantId, input: {epic: {epicClientId: "client-2"}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""
FOREIGN_PREFIX = "@attacker.example.test/FHIR"


@pytest.fixture
async def second(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """Another replica over the same database and key, which has not cached the tenant."""
    async for opened in open_gateway(gateway_config(database_url, tmp_path)):
        yield opened


async def test_the_next_write_does_not_sign_a_value_edited_into_the_document(
    database_url: str, gateway: Gateway, second: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[TEST_DATABASE]["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$set": {"providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}}
        )
        saved = await second.post(SET_CLIENT_ID, tenantId=tenant_id)
        entry = await writer[TEST_DATABASE]["tenant_settings_history"].find_one(
            {"tenantId": tenant_id, "version": 3}
        )
    finally:
        await writer.close()

    signed = None if entry is None else entry["settings"]["providers"]["EPIC"]["fhir"]
    assert signed is None or signed["urlPrefix"] != FOREIGN_PREFIX, (saved, signed)
