"""`ehr-gateway chain-legacy-history`, run as an operator would after upgrading from a gateway
that wrote no chain: until they are adopted, the tenant's versions from before the chain are
never rolled back to; once the operator has checked and adopted them, they are, and the whole
history verifies. A history with a gap is left as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, gateway_config, open_gateway
from tests.processes import environment

SELECT_EPIC = """
mutation Select($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""
SET_FHIR = """
mutation SetFhir($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) {
    __typename
    ... on SettingsSaved { settings { version } }
  }
}
"""
ROLLBACK = """
mutation Rollback($tenantId: ID!, $to: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $to) {
    __typename
    ... on SettingsSaved { settings { version fhir { ... on EpicFhirSettings { urlPrefix } } } }
  }
}
"""


def ehr_gateway(command: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", command, *args],
        env=environment(**settings), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def _as_before_the_chain(database_url: str, tenant_id: str) -> None:
    """The tenant's history as a gateway from before the chain left it: no links."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await client[TEST_DATABASE]["tenant_settings_history"].update_many(
            {"tenantId": tenant_id}, {"$unset": {"chain": ""}}
        )
    finally:
        await client.close()


async def test_history_from_before_the_chain_is_rolled_back_to_only_once_adopted(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
    await _as_before_the_chain(database_url, tenant_id)
    settings = {
        "EHRGW_MONGODB_URL": database_url,
        "EHRGW_DATABASE": TEST_DATABASE,
        "EHRGW_DATA_DIR": str(tmp_path),
    }

    async for gateway in open_gateway(config):
        # The upgraded gateway chains what it writes from here on.
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R5")  # v3
        refused = await gateway.post(ROLLBACK, tenantId=tenant_id, to=2)
        assert refused["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
        assert "chain-legacy-history" in refused["errors"][0]["message"]

    adopted = ehr_gateway("chain-legacy-history", "--tenant", tenant_id, **settings)

    assert adopted.returncode == 0, adopted.stderr
    assert adopted.stdout.splitlines() == [
        f"tenant {tenant_id}: signed 2 entries from before the chain (versions 1 to 2), linked 1 "
        "chained entries after them; history verified up to version 3"
    ]
    verified = ehr_gateway("verify-audit", "--tenant", tenant_id, **settings)
    assert "history: intact, 3 entries verified; head version 3 hash " in verified.stdout
    async for gateway in open_gateway(config):
        rolled_back = await gateway.execute(ROLLBACK, tenantId=tenant_id, to=2)
        assert rolled_back["rollbackSettings"]["settings"] == {
            "version": 4,
            "fhir": {"urlPrefix": "/FHIR/R4"},
        }
    again = ehr_gateway("chain-legacy-history", "--tenant", tenant_id, **settings)
    assert again.stdout.splitlines() == [f"tenant {tenant_id}: nothing to adopt"]


async def test_a_history_with_a_missing_version_is_left_as_it_was(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R5")  # v3
    await _as_before_the_chain(database_url, tenant_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        history = client[TEST_DATABASE]["tenant_settings_history"]
        await history.delete_one({"tenantId": tenant_id, "version": 2})
        left = ehr_gateway(
            "chain-legacy-history", "--tenant", tenant_id,
            EHRGW_MONGODB_URL=database_url, EHRGW_DATABASE=TEST_DATABASE,
            EHRGW_DATA_DIR=str(tmp_path),
        )  # fmt: skip
        chained = await history.count_documents({"tenantId": tenant_id, "chain": {"$exists": True}})
    finally:
        await client.close()

    assert left.returncode == 1
    assert left.stdout.splitlines() == [
        f"tenant {tenant_id}: LEFT AS IT WAS: version 2 is missing or repeated"
    ]
    assert chained == 0
