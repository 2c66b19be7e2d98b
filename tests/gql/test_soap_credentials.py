"""The Epic SOAP username and password are one credential: the stored password is sent with
whatever username is saved. So the username is guarded as the password is (secrets:write): an
account admin (editor), who may not set the password, may not change the name the integrator's
password is sent with either, while he still saves the EHR block with the username as it is."""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway
from tests.documents import SELECT_EPIC

SAVE_EHR = """
mutation SaveEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
    ... on SettingsSaved { settings { version } }
  }
}
"""
SOAP = """
query Soap($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    ehr { ... on EpicSettings { soapUsername soapPassword { isSet fingerprint } } }
  }
}
"""
PAIR = {"soapUsername": "svc-refill", "soapPassword": "integrator-set-password"}


async def _integrated(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    stored = await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={"epic": PAIR})
    assert stored["updateEhrSettings"]["__typename"] == "SettingsSaved", stored
    soap: dict[str, Any] = (await gateway.execute(SOAP, tenantId=tenant_id))["integrationSettings"][
        "ehr"
    ]
    return soap


async def test_an_editor_cannot_send_half_of_the_soap_pair(
    gateway: Gateway, tenant_id: str
) -> None:
    before = await _integrated(gateway, tenant_id)
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])

    body = await editor.post(SAVE_EHR, tenantId=tenant_id, input={"epic": {"soapUsername": "x"}})

    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN", error
    assert error["extensions"]["permission"] == "secrets:write", error
    assert error["extensions"]["fields"] == ["providers.EPIC.ehr.soapUsername"], error
    assert await _integrated(gateway, tenant_id) == before


async def test_an_editor_saving_the_block_with_the_username_unchanged_is_not_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    before = await _integrated(gateway, tenant_id)
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])
    form = {"soapUsername": before["soapUsername"], "context": "Scheduling"}

    saved = await editor.execute(SAVE_EHR, tenantId=tenant_id, input={"epic": form})

    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved


async def test_an_integrator_renames_the_soap_user_keeping_its_password(
    gateway: Gateway, tenant_id: str
) -> None:
    before = await _integrated(gateway, tenant_id)
    integrator = gateway.as_caller(tenants=[tenant_id], roles=["integrator"])

    saved = await integrator.execute(
        SAVE_EHR, tenantId=tenant_id, input={"epic": {"soapUsername": "svc-refill-2"}}
    )

    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved
    after = (await gateway.execute(SOAP, tenantId=tenant_id))["integrationSettings"]["ehr"]
    assert after == {"soapUsername": "svc-refill-2", "soapPassword": before["soapPassword"]}
