"""Promoting a tenant whose integration uses secrets: an export never carries them, so the
target keeps its own; where it has none, the import stores everything else, and both the import
preview and readiness name the secret the target still needs."""

from __future__ import annotations

import copy
from typing import Any

from tests.conftest import Gateway
from tests.documents import EXPORT_SETTINGS, SELECT_PROVIDER_BY_NAME

SAVE_EPIC = """
mutation SaveEpic($tenantId: ID!, $epic: EpicSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: {epic: $epic}) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
SAVE_ELLKAY = """
mutation SaveEllkay($tenantId: ID!, $ellkay: EllkaySettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: {ellkay: $ellkay}) { __typename }
}
"""
IMPORT = """
mutation Import($tenantId: ID!, $settings: JSON!, $dryRun: Boolean!) {
  importSettings(tenantId: $tenantId, document: $settings, dryRun: $dryRun) {
    __typename
    ... on ImportPreview {
      changes { path }
      readiness { ready missing { path message } }
    }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
READINESS = """
query Readiness($tenantId: ID!) {
  readiness(tenantId: $tenantId) { ready missing { path message } warnings { path code } }
}
"""
EPIC_SOAP = """
query EpicSoap($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr { ... on EpicSettings { context soapUsername soapPassword { isSet fingerprint } } }
  }
}
"""
ELLKAY_KEYS = """
query EllkayKeys($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    ehr { ... on EllkaySettings { subscriberKey { isSet } siteServiceKey { isSet } } }
  }
}
"""

SANDBOX_SOAP = {
    "context": "Scheduling",
    "soapUsername": "svc-rx-refills",
    "soapPassword": "Sandbox-Refill-Pass-1",
}


async def _export(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    document: dict[str, Any] = (await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))[
        "exportSettings"
    ]
    return document


async def _import(
    gateway: Gateway, tenant_id: str, document: dict[str, Any], dry_run: bool
) -> dict[str, Any]:
    result: dict[str, Any] = (
        await gateway.execute(IMPORT, tenantId=tenant_id, settings=document, dryRun=dry_run)
    )["importSettings"]
    return result


async def _missing(gateway: Gateway, tenant_id: str) -> dict[tuple[str, ...], str]:
    readiness = (await gateway.execute(READINESS, tenantId=tenant_id))["readiness"]
    return {tuple(check["path"]): check["message"] for check in readiness["missing"]}


async def _epic_sandbox_using_soap(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    saved = await gateway.execute(SAVE_EPIC, tenantId=tenant_id, epic=SANDBOX_SOAP)
    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved
    document = await _export(gateway, tenant_id)
    assert document["providers"]["EPIC"]["ehr"]["soapUsername"] == "svc-rx-refills"
    assert "soapPassword" not in document["providers"]["EPIC"]["ehr"]
    return document


async def test_an_epic_tenant_using_soap_is_promoted_to_a_tenant_without_a_password(
    gateway: Gateway, tenant_id: str
) -> None:
    document = await _epic_sandbox_using_soap(gateway, tenant_id)
    production = f"{tenant_id}-prod"

    preview = await _import(gateway, production, document, dry_run=True)
    assert preview["__typename"] == "ImportPreview", preview
    needed = {tuple(check["path"]): check["message"] for check in preview["readiness"]["missing"]}
    assert "Prescription Refill" in needed[("ehr", "soapPassword")]
    assert (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"] is None

    saved = await _import(gateway, production, document, dry_run=False)
    assert saved["__typename"] == "SettingsSaved", saved
    stored = (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"]
    assert stored["ehr"]["context"] == "Scheduling"
    assert stored["ehr"]["soapUsername"] == "svc-rx-refills"
    assert stored["ehr"]["soapPassword"]["isSet"] is False
    assert ("ehr", "soapPassword") in await _missing(gateway, production)

    # Saving another Epic setting is not held hostage by the password still on its way...
    unrelated = await gateway.execute(SAVE_EPIC, tenantId=production, epic={"context": "Refills"})
    assert unrelated["updateEhrSettings"]["__typename"] == "SettingsSaved", unrelated
    # ...and setting it on the target completes the pair.
    password = await gateway.execute(
        SAVE_EPIC, tenantId=production, epic={"soapPassword": "Production-Refill-Pass-2"}
    )
    assert password["updateEhrSettings"]["__typename"] == "SettingsSaved", password
    assert ("ehr", "soapPassword") not in await _missing(gateway, production)


async def test_a_direct_save_of_half_the_soap_credentials_is_still_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    """At the form, the user can complete the pair, so a save sending one half is refused."""
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")

    alone = await gateway.execute(SAVE_EPIC, tenantId=tenant_id, epic={"soapUsername": "svc-rx"})

    assert alone["updateEhrSettings"] == {
        "__typename": "ValidationFailed",
        # On the field the save sent, so a form shows it there (the message names the other).
        "errors": [
            {"path": ["input", "epic", "soapUsername"], "code": "SOAP_CREDENTIALS_INCOMPLETE"}
        ],
    }


async def test_the_target_keeps_its_own_soap_password(gateway: Gateway, tenant_id: str) -> None:
    document = await _epic_sandbox_using_soap(gateway, tenant_id)
    production = f"{tenant_id}-prod"
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=production, provider="EPIC")
    own = {"soapUsername": "svc-prod", "soapPassword": "Production-Refill-Pass-3"}
    await gateway.execute(SAVE_EPIC, tenantId=production, epic=own)
    before = (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"]

    preview = await _import(gateway, production, document, dry_run=True)
    saved = await _import(gateway, production, document, dry_run=False)

    assert ["ehr", "soapPassword"] not in [c["path"] for c in preview["readiness"]["missing"]]
    assert saved["__typename"] == "SettingsSaved", saved
    after = (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"]
    assert after["ehr"]["soapUsername"] == "svc-rx-refills"
    assert after["ehr"]["soapPassword"] == before["ehr"]["soapPassword"]
    assert ("ehr", "soapPassword") not in await _missing(gateway, production)


async def test_a_target_password_without_the_sources_username_is_kept_and_warned_about(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(SAVE_EPIC, tenantId=tenant_id, epic={"context": "Scheduling"})
    document = await _export(gateway, tenant_id)
    production = f"{tenant_id}-prod"
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=production, provider="EPIC")
    own = {"soapUsername": "svc-prod", "soapPassword": "Production-Refill-Pass-4"}
    await gateway.execute(SAVE_EPIC, tenantId=production, epic=own)

    saved = await _import(gateway, production, document, dry_run=False)

    assert saved["__typename"] == "SettingsSaved", saved
    after = (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"]
    assert after["ehr"]["soapUsername"] is None
    assert after["ehr"]["soapPassword"]["isSet"] is True
    warnings = (await gateway.execute(READINESS, tenantId=production))["readiness"]["warnings"]
    assert {"path": ["ehr", "soapPassword"], "code": "NO_EFFECT"} in warnings


async def test_an_ellkay_tenant_is_promoted_without_its_keys(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ELLKAY")
    keys = {"subscriberKey": "Sandbox-Subscriber-9", "siteServiceKey": "Sandbox-Site-9",
            "nameForSendInteractiveRecords": "Conversation details"}  # fmt: skip
    await gateway.execute(SAVE_ELLKAY, tenantId=tenant_id, ellkay=keys)
    document = await _export(gateway, tenant_id)
    production = f"{tenant_id}-prod"

    preview = await _import(gateway, production, document, dry_run=True)
    saved = await _import(gateway, production, document, dry_run=False)

    needed = [check["path"] for check in preview["readiness"]["missing"]]
    assert ["ehr", "subscriberKey"] in needed and ["ehr", "siteServiceKey"] in needed
    assert saved["__typename"] == "SettingsSaved", saved
    stored = (await gateway.execute(ELLKAY_KEYS, tenantId=production))["integrationSettings"]
    assert stored["ehr"] == {"subscriberKey": {"isSet": False}, "siteServiceKey": {"isSet": False}}
    missing = await _missing(gateway, production)
    assert ("ehr", "subscriberKey") in missing and ("ehr", "siteServiceKey") in missing


PLANTED = {
    "ciphertext": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "keyId": "planted",
    "fingerprint": "0123456789abcdef",
    "updatedAt": "2026-01-01T00:00:00Z",
}


def _with_ehr_key(document: dict[str, Any], key: str, value: object) -> dict[str, Any]:
    edited = copy.deepcopy(document)
    edited["providers"]["EPIC"]["ehr"][key] = value
    return edited


async def test_an_import_cannot_plant_a_secret_under_its_python_name(
    gateway: Gateway, tenant_id: str
) -> None:
    """A document is read by the names an export writes: `soap_password` is not `soapPassword`
    spelt differently, and a sealed secret of the document author's making is never stored."""
    document = await _epic_sandbox_using_soap(gateway, tenant_id)
    production = f"{tenant_id}-prod"

    for dry_run in (True, False):
        result = await _import(
            gateway, production, _with_ehr_key(document, "soap_password", PLANTED), dry_run
        )

        assert result["__typename"] == "ValidationFailed", result
        assert [(error["path"], error["code"]) for error in result["errors"]] == [
            (["document", "providers", "EPIC", "ehr"], "INVALID")
        ]
    assert (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"] is None


async def test_an_import_cannot_clear_the_targets_secret_under_its_python_name(
    gateway: Gateway, tenant_id: str
) -> None:
    document = await _epic_sandbox_using_soap(gateway, tenant_id)
    production = f"{tenant_id}-prod"
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=production, provider="EPIC")
    own = {"soapUsername": "svc-prod", "soapPassword": "Production-Refill-Pass-3"}
    await gateway.execute(SAVE_EPIC, tenantId=production, epic=own)
    before = (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"]

    result = await _import(
        gateway, production, _with_ehr_key(document, "soap_password", {}), dry_run=False
    )

    assert result["__typename"] == "ValidationFailed", result
    after = (await gateway.execute(EPIC_SOAP, tenantId=production))["integrationSettings"]
    assert after == before


async def test_an_import_names_settings_as_an_export_does(gateway: Gateway, tenant_id: str) -> None:
    document = await _epic_sandbox_using_soap(gateway, tenant_id)
    renamed = _with_ehr_key(document, "soap_username", "svc-renamed")
    del renamed["providers"]["EPIC"]["ehr"]["soapUsername"]

    result = await _import(gateway, f"{tenant_id}-prod", renamed, dry_run=True)

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["document", "providers", "EPIC", "ehr", "soap_username"], "UNKNOWN_FIELD")
    ]
