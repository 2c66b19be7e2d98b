"""Who decides whom the gateway trusts: the settings that choose the key sets, issuers and
servers it trusts or calls need integration:edit to change, whichever write carries them, while
an account admin (editor) still saves the rest of their blocks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from ehr_gateway.ehr.blocks import PROVIDER_BLOCKS, ProviderSettings
from ehr_gateway.ehr.common import EhrProvider, ExternalGateway, SettingsBlock
from ehr_gateway.ehr.fields import guarded_by
from ehr_gateway.ehr.identifiers import IdentifierDefaults
from ehr_gateway.resolvers import gateway as gateway_resolvers
from ehr_gateway.resolvers import promotion, settings
from ehr_gateway.resolvers.context import Context, Deployment
from ehr_gateway.resolvers.outcomes import Outcome, Saved
from ehr_gateway.runtime.access import Forbidden, Permission, Principal, Role
from ehr_gateway.runtime.broker import Broker
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import SettingsRepository
from ehr_gateway.storage.secrets import SecretBox
from tests.conftest import TEST_DATABASE, Gateway
from tests.documents import CREATE_GATEWAY_CONNECTION, EXPORT_SETTINGS, SELECT_EPIC, VERIFY_EPIC_JWT
from tests.epic_issuer import AUDIENCE, Issuer, serve_issuer

SAVE_EPIC_SETTINGS = """
mutation SaveEpicSettings($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
DISCOVER = """
mutation Discover($tenantId: ID!, $issuerUrl: String) {
  discoverJku(tenantId: $tenantId, issuerUrl: $issuerUrl) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
EPIC_SETTINGS_FORM = """
query EpicSettingsForm($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr {
      ... on EpicSettings {
        context jkuServerUrl enableDefaultJkuServerUrlPattern jwtIssuerUrl jwtAudience
        useOauth oauthBasePath
      }
    }
    jkuKeySet { url }
  }
}
"""
AUDIT_LOG = """
query AuditLog($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 1) {
    entries { outcome operation subject missingPermission version }
  }
}
"""

CONNECTION = {"name": "Epic", "baseUrl": "https://fhir.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip
EHR = "providers.EPIC.ehr"


@pytest.fixture
async def attacker() -> AsyncIterator[Issuer]:
    """A key server of the editor's own, with a key named like Epic's."""
    async with serve_issuer(first_kid="k1") as issuer:
        yield issuer


async def _integrated(staff: Gateway, tenant_id: str, epic: Issuer) -> dict[str, Any]:
    """An Epic tenant as the implementation team leaves it: the JKU discovered from Epic's
    issuer, OAuth on; its EHR settings as the settings page reads them."""
    await staff.execute(SELECT_EPIC, tenantId=tenant_id)
    await staff.execute(CREATE_GATEWAY_CONNECTION, tenantId=tenant_id, connection=CONNECTION)
    saved = await staff.execute(
        SAVE_EPIC_SETTINGS, tenantId=tenant_id,
        input={"epic": {"context": "Scheduling", "enableDefaultJkuServerUrlPattern": True,
                        "jwtAudience": AUDIENCE, "useOauth": True, "oauthBasePath": "/oauth2"}},
    )  # fmt: skip
    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved
    discovered = await staff.execute(DISCOVER, tenantId=tenant_id, issuerUrl=epic.url)
    assert discovered["discoverJku"]["__typename"] == "SettingsSaved", discovered
    return await _form(staff, tenant_id)


async def _form(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    settings: dict[str, Any] = (await gateway.execute(EPIC_SETTINGS_FORM, tenantId=tenant_id))[
        "integrationSettings"
    ]
    return settings


async def test_an_editor_cannot_point_the_gateway_at_a_key_set_of_his_own(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    before = await _integrated(local_gateway, tenant_id, epic)
    editor = local_gateway.as_caller(tenants=[tenant_id], roles=["editor"], subject="mallory")

    body = await editor.post(
        SAVE_EPIC_SETTINGS, tenantId=tenant_id,
        input={"epic": {"jkuServerUrl": attacker.jwks_url, "jwtIssuerUrl": attacker.url,
                        "enableDefaultJkuServerUrlPattern": False}},
    )  # fmt: skip

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "permission": "integration:edit",
        "fields": [
            f"{EHR}.enableDefaultJkuServerUrlPattern",
            f"{EHR}.jkuServerUrl",
            f"{EHR}.jwtIssuerUrl",
        ],
    }
    assert await _form(local_gateway, tenant_id) == before  # nothing stored
    [denial] = (await local_gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]["entries"]
    assert denial == {
        "outcome": "DENIED", "operation": "updateEhrSettings", "subject": "mallory",
        "missingPermission": "integration:edit", "version": None,
    }  # fmt: skip

    forged = attacker.token(attacker.keys[0], iss=attacker.url)
    verified = await local_gateway.execute(VERIFY_EPIC_JWT, tenantId=tenant_id, token=forged)
    assert verified["verifyEpicJwt"]["__typename"] == "JwtRejected"
    assert attacker.jwks_served == 0  # his key set was never even fetched


async def test_an_editor_saving_the_block_with_its_trust_settings_unchanged_is_not_refused(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    form = await _integrated(local_gateway, tenant_id, epic)
    editor = local_gateway.as_caller(tenants=[tenant_id], roles=["editor"])

    # The settings page sends back every field it shows, the trust settings among them.
    sent = {**form["ehr"], "context": "Scheduling (new)"}
    saved = await editor.execute(SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": sent})

    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved
    assert (await _form(local_gateway, tenant_id))["ehr"] == sent


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("jkuServerUrl", "https://keys.attacker.example/jwks"),
        ("jkuServerUrl", None),
        ("enableDefaultJkuServerUrlPattern", False),
        ("jwtIssuerUrl", "https://attacker.example"),
        ("jwtAudience", "https://attacker.example/cti"),
        ("useOauth", False),
        ("oauthBasePath", "/elsewhere"),
    ],
)
async def test_an_editor_changing_any_trust_setting_of_the_ehr_block_is_refused(
    local_gateway: Gateway, epic: Issuer, tenant_id: str, setting: str, value: Any
) -> None:
    before = await _integrated(local_gateway, tenant_id, epic)
    editor = local_gateway.as_caller(tenants=[tenant_id], roles=["editor"])

    body = await editor.post(
        SAVE_EPIC_SETTINGS, tenantId=tenant_id,
        input={"epic": {"context": "Scheduling (new)", setting: value}},
    )  # fmt: skip

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["fields"] == [f"{EHR}.{setting}"]
    assert await _form(local_gateway, tenant_id) == before  # not even the context


# --- Every other write that carries a trust setting ---------------------------------------------
#
# The operations below need more than settings:edit already (integration:edit, settings:import,
# settings:rollback), so no role of today reaches them without integration:edit. The write path
# refuses a trust change on its own all the same: called here as the resolvers they are, for a
# caller who has only the editor role.


@pytest.fixture
async def editor_context(
    local_gateway: Gateway, database_url: str, tenant_id: str
) -> AsyncIterator[Context]:
    """The resolvers' context on the gateway's database, for an editor of ``tenant_id``."""
    config = local_gateway.config
    client = connect(database_url)
    box = SecretBox.from_data_dir(config.data_dir)
    repository = SettingsRepository(client, TEST_DATABASE, box.chain)
    await repository.prepare()
    editor = Principal("erin", frozenset({Role.EDITOR}), frozenset({tenant_id}), time.time() + 300)
    deployment = Deployment(config.base_url, IdentifierDefaults(), allow_insecure_http=True)
    yield Context(
        repository, box, deployment, Broker(),
        principal=editor, request_id="trust-test",
    )  # fmt: skip
    await client.close()


Carrier = Callable[[Context, str, Gateway], Awaitable[Outcome]]


async def _oauth_token_url(context: Context, tenant_id: str, staff: Gateway) -> Outcome:
    patch = {"oauthTokenUrl": "https://attacker.example/token"}
    return await settings.update_block(
        context, tenant_id, SettingsBlock.OAUTH, EhrProvider.EPIC, patch, None
    )


async def _external_gateway_base_url(context: Context, tenant_id: str, staff: Gateway) -> Outcome:
    connection = {**CONNECTION, "baseUrl": "https://attacker.example/api"}
    return await gateway_resolvers.create_external_gateway(context, tenant_id, connection, None)


async def _import_with_another_issuer(context: Context, tenant_id: str, staff: Gateway) -> Outcome:
    document = (await staff.execute(EXPORT_SETTINGS, tenantId=tenant_id))["exportSettings"]
    document["providers"]["EPIC"]["ehr"]["jwtIssuerUrl"] = "https://attacker.example"
    return await promotion.import_settings(context, tenant_id, document, None)


async def _rollback_to_before_discovery(
    context: Context, tenant_id: str, staff: Gateway
) -> Outcome:
    return await promotion.rollback_settings(context, tenant_id, 3, None)  # 4: discoverJku


@pytest.mark.parametrize(
    ("carry", "fields"),
    [
        (_oauth_token_url, ["providers.EPIC.oauth.oauthTokenUrl"]),
        (_external_gateway_base_url, ["providers.EPIC.externalGateway.baseUrl"]),
        (_import_with_another_issuer, [f"{EHR}.jwtIssuerUrl"]),
        (
            _rollback_to_before_discovery,
            [f"{EHR}.jkuServerUrl", f"{EHR}.jwtIssuerUrl", "providers.EPIC.jku.fetchedAt",
             "providers.EPIC.jku.issuerUrl", "providers.EPIC.jku.keys", "providers.EPIC.jku.url"],
        ),
    ],
)  # fmt: skip
async def test_every_write_that_carries_a_trust_setting_refuses_it_to_an_editor(
    local_gateway: Gateway,
    epic: Issuer,
    editor_context: Context,
    tenant_id: str,
    carry: Carrier,
    fields: list[str],
) -> None:
    before = await _integrated(local_gateway, tenant_id, epic)

    with pytest.raises(Forbidden) as refused:
        await carry(editor_context, tenant_id, local_gateway)

    assert refused.value.permission is Permission.INTEGRATE
    assert list(refused.value.fields) == fields
    assert await _form(local_gateway, tenant_id) == before


async def test_the_same_writes_without_a_trust_change_are_the_editors_to_make(
    local_gateway: Gateway, epic: Issuer, editor_context: Context, tenant_id: str
) -> None:
    await _integrated(local_gateway, tenant_id, epic)
    renamed = {**CONNECTION, "name": "Epic (production)"}
    document = (await local_gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))["exportSettings"]
    document["providers"]["EPIC"]["ehr"]["context"] = "Imported"

    outcomes = [
        await gateway_resolvers.create_external_gateway(editor_context, tenant_id, renamed, None),
        await promotion.import_settings(editor_context, tenant_id, document, None),
        await promotion.rollback_settings(editor_context, tenant_id, 5, None),  # 5: the rename
    ]

    assert [type(outcome) for outcome in outcomes] == [Saved, Saved, Saved]
    assert (await _form(local_gateway, tenant_id))["ehr"]["context"] == "Scheduling"


def test_the_settings_that_decide_whom_the_gateway_trusts_are_declared_on_their_fields() -> None:
    models: list[type[BaseModel]] = [ProviderSettings, ExternalGateway]
    models += [model for blocks in PROVIDER_BLOCKS.values() for model in blocks.values()]
    guarded = {
        f"{model.__name__}.{field.alias or name}": guarded_by(field)
        for model in dict.fromkeys(models)
        for name, field in model.model_fields.items()
        if guarded_by(field) is not None
    }
    assert guarded == {
        "ProviderSettings.jku": "integration:edit",
        "ProviderSettings.signingKeys": "integration:edit",
        "ExternalGateway.baseUrl": "integration:edit",
        "ExternalGateway.externalGatewayId": "integration:edit",
        "ExternalGateway.basePathUrl": "integration:edit",
        "EpicSettings.jkuServerUrl": "integration:edit",
        "EpicSettings.enableDefaultJkuServerUrlPattern": "integration:edit",
        "EpicSettings.jwtIssuerUrl": "integration:edit",
        "EpicSettings.jwtAudience": "integration:edit",
        "EpicSettings.useOauth": "integration:edit",
        "EpicSettings.oauthBasePath": "integration:edit",
        "EpicSettings.soapUsername": "secrets:write",
        "EpicSettings.soapPassword": "secrets:write",
        "EllkaySettings.subscriberKey": "secrets:write",
        "EllkaySettings.siteServiceKey": "secrets:write",
        "GenericHeaderSettings.cfAccessClientId": "secrets:write",
        "GenericHeaderSettings.cfAccessClientSecret": "secrets:write",
        "EpicOAuthSettings.oauthTokenUrl": "integration:edit",
    }
    assert {Permission(permission) for permission in guarded.values()}  # all of them known
