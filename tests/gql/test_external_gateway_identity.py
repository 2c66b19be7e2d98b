"""The external gateway id is what Epic calls the tenant by (its base path URL), and rotating it
is how an integrator revokes the old one. So an import keeps the target's id whatever the
document holds: a document with no externalGateway (a sandbox that never created one, an export
edited down) used to remove it, and Epic's calls to the base path URL then answered 404. And a
rollback never brings back an id other than the tenant's current one: after such an import,
rolling back revived an id that had been rotated to revoke it."""

from __future__ import annotations

from urllib.parse import urlsplit

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.settings import with_provider_settings
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import SettingsRepository
from ehr_gateway.storage.secrets import SecretBox
from tests.conftest import TEST_DATABASE, Gateway
from tests.documents import EXPORT_SETTINGS, SELECT_EPIC
from tests.epic_issuer import Issuer
from tests.gql.test_jku_onboarding import _call, _click_to_call

CREATE_GATEWAY = """
mutation Gateway($tenantId: ID!) {
  createExternalGateway(
    tenantId: $tenantId
    connection: {name: "Epic", baseUrl: "https://fhir.hospital.example/api",
                 environment: PRODUCTION}
  ) { ... on SettingsSaved { settings { externalGateway { externalGatewayId basePathUrl } } } }
}
"""
IMPORT = """
mutation Import($tenantId: ID!, $doc: JSON!) {
  importSettings(tenantId: $tenantId, document: $doc) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
READ = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { externalGateway { externalGatewayId } }
}
"""


async def test_an_import_keeps_the_targets_external_gateway_id(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    production, sandbox = tenant_id, f"{tenant_id}-sandbox"
    await local_gateway.execute(SELECT_EPIC, tenantId=production)
    created = (await local_gateway.execute(CREATE_GATEWAY, tenantId=production))[
        "createExternalGateway"
    ]["settings"]["externalGateway"]
    await local_gateway.execute(SELECT_EPIC, tenantId=sandbox)  # no external gateway
    document = (await local_gateway.execute(EXPORT_SETTINGS, tenantId=sandbox))["exportSettings"]

    imported = (await local_gateway.execute(IMPORT, tenantId=production, doc=document))[
        "importSettings"
    ]
    after = (await local_gateway.execute(READ, tenantId=production))["integrationSettings"]
    base_path_url = created["basePathUrl"]
    epic_calls = await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))

    assert imported["__typename"] == "SettingsSaved", imported
    assert after["externalGateway"] == {"externalGatewayId": created["externalGatewayId"]}, after
    assert epic_calls.status_code == 202, (urlsplit(base_path_url).path, epic_calls.text)


REGENERATE = """
mutation Regenerate($tenantId: ID!) {
  regenerateExternalGatewayId(tenantId: $tenantId) {
    ... on SettingsSaved { settings { version externalGateway { externalGatewayId } } }
  }
}
"""
ROLLBACK = """
mutation Rollback($tenantId: ID!, $toVersion: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $toVersion) { __typename }
}
"""
RESOLVE = """
query Resolve($id: ID!) { resolveExternalGateway(externalGatewayId: $id) { tenantId } }
"""


async def test_a_rotated_gateway_id_never_comes_back(
    local_gateway: Gateway, tenant_id: str
) -> None:
    production, sandbox = tenant_id, f"{tenant_id}-sandbox"
    await local_gateway.execute(SELECT_EPIC, tenantId=production)
    revoked = (await local_gateway.execute(CREATE_GATEWAY, tenantId=production))[
        "createExternalGateway"
    ]["settings"]["externalGateway"]["externalGatewayId"]  # version 2
    await local_gateway.execute(REGENERATE, tenantId=production)  # revoked at version 3
    await local_gateway.execute(SELECT_EPIC, tenantId=sandbox)
    document = (await local_gateway.execute(EXPORT_SETTINGS, tenantId=sandbox))["exportSettings"]
    await local_gateway.execute(IMPORT, tenantId=production, doc=document)  # version 4
    await local_gateway.execute(ROLLBACK, tenantId=production, toVersion=2)

    resolved = (await local_gateway.execute(RESOLVE, id=revoked))["resolveExternalGateway"]

    assert resolved is None, resolved


READ_CONNECTION = """
query ReadConnection($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { externalGateway { externalGatewayId name } }
}
"""


async def test_a_tenant_left_without_an_external_gateway_gets_no_id_from_history(
    gateway: Gateway, database_url: str, tenant_id: str
) -> None:
    """A tenant whose external gateway an earlier gateway's import removed: rolling back to a
    version that had one brings the connection back under a new id, never history's (which
    may have been rotated to revoke it)."""
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    revoked = (await gateway.execute(CREATE_GATEWAY, tenantId=tenant_id))["createExternalGateway"][
        "settings"
    ]["externalGateway"]["externalGatewayId"]  # version 2
    rotated = (await gateway.execute(REGENERATE, tenantId=tenant_id))[
        "regenerateExternalGatewayId"
    ]["settings"]["externalGateway"]["externalGatewayId"]  # version 3
    client = connect(database_url)
    try:  # version 4, as an import of the earlier code stored it
        repository = SettingsRepository(
            client, TEST_DATABASE, SecretBox.from_data_dir(gateway.config.data_dir).chain
        )
        current = await repository.get(tenant_id)
        assert current is not None
        dropped = with_provider_settings(current, EhrProvider.EPIC, external_gateway=None)
        await repository.save(
            dropped, base_version=current.version, actor="earlier-import",
            changed_blocks=[SettingsBlock.EXTERNAL_GATEWAY],
            changed_paths=["providers.EPIC.externalGateway"],
        )  # fmt: skip
    finally:
        await client.close()

    rolled_back = await gateway.execute(ROLLBACK, tenantId=tenant_id, toVersion=2)

    assert rolled_back["rollbackSettings"]["__typename"] == "SettingsSaved", rolled_back
    after = (await gateway.execute(READ_CONNECTION, tenantId=tenant_id))["integrationSettings"]
    assert after["externalGateway"]["name"] == "Epic", after
    assert after["externalGateway"]["externalGatewayId"] not in {revoked, rotated}, after
    for old in (revoked, rotated):
        assert (await gateway.execute(RESOLVE, id=old))["resolveExternalGateway"] is None
