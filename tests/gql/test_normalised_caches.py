"""Normalised caches (Apollo Client's InMemoryCache, urql's graphcache) keep a single-page admin
app right: the current settings have an id of their own, the same in every version, so a saved
section replaces the cached one; stored versions (history, change events) are another type with
other ids, so they never overwrite it; each block's id derives from its owner's, so a section
saved with fewer fields than the page shows merges into it. The union and interface map these
caches need (possibleTypes) is published and drift-checked like schema.graphql."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from ehr_gateway.gql.possible_types import possible_types_json
from ehr_gateway.server.cli import main
from tests.conftest import Gateway
from tests.documents import SELECT_EPIC
from tests.node_clients import run_node
from tests.processes import GatewayProcess, TransportWsClient

POSSIBLE_TYPES_FILE = Path(__file__).parents[2] / "possibleTypes.json"


SAVE_FHIR = """
mutation SaveFhir($tenantId: ID!, $ssn: String!) {
  updateFhirSettings(
    tenantId: $tenantId,
    input: {epic: {urlPrefix: "/FHIR/R4", ssnIdentifier: $ssn, mrnIdentifier: "urn:oid:1.2.3"}}
  ) { __typename }
}
"""

SET_RESTRICTION = """
mutation SetRestriction($tenantId: ID!) {
  updatePatientRestriction(tenantId: $tenantId, expression: "age < 18") { __typename }
}
"""

IDENTITIES = """
query Identities($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { ...Identity }
  settingsHistory(tenantId: $tenantId) { versions { settings { ...Identity } } }
}

fragment Identity on SettingsView {
  __typename id version
  patientRestriction { __typename id }
  fhir { ... on EpicFhirSettings { __typename id } }
}
"""

CONFIGURATION_CHANGED = """
subscription Changes($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId, sinceVersion: 0) {
    version settings { __typename id }
  }
}
"""


def test_the_committed_possible_types_are_the_ones_the_schema_has() -> None:
    assert POSSIBLE_TYPES_FILE.read_text() == possible_types_json(), (
        "possibleTypes.json is stale: run `ehr-gateway export-possible-types > possibleTypes.json`"
    )


def test_export_possible_types_prints_every_union_and_interface(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["export-possible-types"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["SettingsView"] == ["IntegrationSettings", "SettingsSnapshot"]
    assert printed["FhirSettings"] == [
        "AthenaFhirSettings",
        "CernerFhirSettings",
        "EpicFhirSettings",
    ]
    assert printed["SettingsResult"] == ["SettingsSaved", "ValidationFailed", "VersionConflict"]


async def test_current_settings_and_stored_versions_never_share_an_identity(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    first = await gateway.execute(IDENTITIES, tenantId=tenant_id)
    await gateway.execute(SAVE_FHIR, tenantId=tenant_id, ssn="urn:oid:2.16.840.1.113883.4.1")
    await gateway.execute(SET_RESTRICTION, tenantId=tenant_id)
    later = await gateway.execute(IDENTITIES, tenantId=tenant_id)

    current = later["integrationSettings"]
    assert current["__typename"] == "IntegrationSettings"
    # The same object in a cache whatever the version: a save replaces it.
    assert current["id"] == first["integrationSettings"]["id"]
    snapshots = [entry["settings"] for entry in later["settingsHistory"]["versions"]]
    assert [snapshot["version"] for snapshot in snapshots] == [3, 2, 1]
    assert {snapshot["__typename"] for snapshot in snapshots} == {"SettingsSnapshot"}
    # Cache keys are typename and id: none of the settings or their blocks may share one.
    keys = [
        f"{owner['__typename']}:{owner['id']}"
        for settings in [current, *snapshots]
        for owner in (settings, settings["patientRestriction"], settings["fhir"])
        if owner is not None
    ]
    assert len(keys) == len(set(keys)) == 4 * 3
    assert current["fhir"]["id"] != snapshots[0]["fhir"]["id"]


def test_change_events_carry_snapshots_not_the_current_settings(tmp_path: Path) -> None:
    tenant_id = f"tenant-{uuid.uuid4().hex[:8]}"
    gateway = GatewayProcess(tmp_path)
    try:
        gateway.graphql(SELECT_EPIC, tenantId=tenant_id)
        current = gateway.graphql(
            "query ($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { id } }",
            tenantId=tenant_id,
        )["data"]["integrationSettings"]
        change = asyncio.run(_first_change(gateway, tenant_id))
    finally:
        gateway.stop()
    assert change["settings"]["__typename"] == "SettingsSnapshot"
    assert change["settings"]["id"] != current["id"]


async def _first_change(gateway: GatewayProcess, tenant_id: str) -> dict[str, object]:
    client = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
    try:
        await client.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant_id)
        data = await client.next_data("1")
    finally:
        await client.close()
    change: dict[str, object] = data["configurationChanged"]
    return change


@pytest.mark.parametrize("client", ["apollo", "urql"])
def test_a_cache_with_only_possible_types_shows_a_saved_section_and_keeps_history_apart(
    client: str, tmp_path: Path
) -> None:
    """Apollo Client 4's InMemoryCache, and urql's graphcache, configured with possibleTypes and
    nothing else."""
    tenant_id = f"tenant-{uuid.uuid4().hex[:8]}"
    gateway = GatewayProcess(tmp_path)
    try:
        gateway.graphql(SELECT_EPIC, tenantId=tenant_id)
        saved = gateway.graphql(SAVE_FHIR, tenantId=tenant_id, ssn="urn:oid:1.1.1")
        assert saved["data"]["updateFhirSettings"]["__typename"] == "SettingsSaved"
        seen = run_node(
            "normalised_cache.mjs",
            client,
            env={
                "GATEWAY_URL": f"{gateway.url}/graphql",
                "GATEWAY_TOKEN": gateway.token,
                "TENANT_ID": tenant_id,
                "POSSIBLE_TYPES": str(POSSIBLE_TYPES_FILE),
            },
        )
    finally:
        gateway.stop()

    fhir_before = {
        "urlPrefix": "/FHIR/R4", "ssnIdentifier": "urn:oid:1.1.1",
        "mrnIdentifier": "urn:oid:1.2.3", "useBatch": seen["loaded"]["fhir"]["useBatch"],
    }  # fmt: skip
    fhir_after = {**fhir_before, "ssnIdentifier": "urn:oid:1.2.840.9"}
    assert seen["loaded"]["version"] == 2
    assert seen["loaded"]["fhir"] == fhir_before
    assert seen["saved"] == {"typename": "SettingsSaved", "version": 3, "errors": []}

    # The page, from the cache alone: the new version and value, and the block's fields the
    # save did not select are still there (the block merged).
    for page in (seen["page"], seen["pageAfterHistory"]):
        assert page["complete"], page["missing"]
        assert page["data"]["version"] == 3
        assert page["data"]["fhir"] == fhir_after
        assert page["data"]["id"] == seen["loaded"]["id"]

    # The history page loaded before the save still shows what each version held.
    assert seen["historyAfterSave"]["complete"], seen["historyAfterSave"]["missing"]
    old = seen["historyAfterSave"]["data"]
    assert [entry["version"] for entry in old] == [2, 1]
    assert old[0]["settings"]["version"] == 2
    assert old[0]["settings"]["fhir"] == fhir_before
    assert old[1]["settings"]["fhir"]["mrnIdentifier"] is None  # version 1 had none yet

    # Refetched, it holds the new version too, each with its own values.
    refetched = seen["historyRefetched"]["data"]
    assert [entry["version"] for entry in refetched] == [3, 2, 1]
    assert [entry["settings"]["version"] for entry in refetched] == [3, 2, 1]
    assert refetched[0]["settings"]["fhir"] == fhir_after
    assert refetched[1]["settings"]["fhir"] == fhir_before
    # Every object of the settings has an identity: only the history page, a window onto the
    # list rather than a thing of its own, is embedded.
    assert seen["unkeyed"] == ([] if client == "apollo" else ["SettingsHistoryPage"])
    if client == "apollo":
        # Apollo warns when it replaces an object it could not normalise ("Cache data may be
        # lost"): it had none to replace.
        assert seen["warnings"] == []
