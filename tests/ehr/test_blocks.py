"""Blocks and the tenant document (ehr/blocks.py): which model each EHR uses, the stored form,
partial updates, reading stored blocks, and the permissions settings declare."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ehr_gateway.ehr.athena import AthenaFhirSettings, AthenaSettings
from ehr_gateway.ehr.blocks import (
    PROVIDER_BLOCKS,
    ProviderSettings,
    TenantSettings,
    apply_patch,
    block_models,
    guarded_settings,
    permission_to_change,
    stored_form,
)
from ehr_gateway.ehr.cerner import CernerFhirSettings
from ehr_gateway.ehr.common import (
    EhrProvider,
    ExternalGateway,
    ExternalGatewayConnection,
    GenericHeaderSettings,
    SettingsBlock,
)
from ehr_gateway.ehr.ellkay import EllkaySettings
from ehr_gateway.ehr.epic import (
    EpicFhirSettings,
    EpicHeaderSettings,
    EpicOAuthSettings,
    EpicSettings,
)
from ehr_gateway.ehr.fields import SettingsModel


def test_each_ehr_has_the_blocks_the_spec_gives_it() -> None:
    assert {p: set(blocks) for p, blocks in PROVIDER_BLOCKS.items()} == {
        EhrProvider.EPIC: {SettingsBlock.HEADERS, SettingsBlock.FHIR, SettingsBlock.EHR,
                           SettingsBlock.OAUTH},
        EhrProvider.ATHENA: {SettingsBlock.HEADERS, SettingsBlock.FHIR, SettingsBlock.EHR},
        EhrProvider.CERNER: {SettingsBlock.HEADERS, SettingsBlock.FHIR, SettingsBlock.EHR},
        EhrProvider.ELLKAY: {SettingsBlock.HEADERS, SettingsBlock.EHR},
    }  # fmt: skip
    assert PROVIDER_BLOCKS[EhrProvider.ELLKAY][SettingsBlock.HEADERS] is GenericHeaderSettings


def test_the_stored_form_holds_only_what_differs_from_the_defaults() -> None:
    epic = EpicSettings(context="Scheduling", epic_user_id_type="External")
    assert stored_form(epic) == {"context": "Scheduling"}
    assert stored_form(AthenaSettings()) == {}


def test_a_patch_sets_present_keys_clears_nulls_and_keeps_absent_ones() -> None:
    current = EpicSettings(
        context="Scheduling", vip_flag_type="VIP", max_allowed_slot_search_date_range_days=120
    )
    updated = apply_patch(
        current, {"context": "Refills", "maxAllowedSlotSearchDateRangeDays": None}
    )
    assert isinstance(updated, EpicSettings)
    assert updated.context == "Refills"
    assert updated.vip_flag_type == "VIP"
    assert updated.max_allowed_slot_search_date_range_days == 90  # back to the spec's default
    assert current.context == "Scheduling"  # the stored block is not changed in place


def test_a_patch_is_validated_as_a_whole_so_cross_field_rules_see_the_result() -> None:
    current = EpicSettings(
        epic_maximum_slot_search_date_range_in_days=100, max_allowed_slot_search_date_range_days=120
    )
    with pytest.raises(ValidationError) as raised:
        apply_patch(current, {"maxAllowedSlotSearchDateRangeDays": None})
    assert raised.value.errors()[0]["type"] == "slot_search_range_exceeds_total"


def test_a_stored_block_is_read_under_the_rules_of_the_day_it_was_written() -> None:
    settings = TenantSettings(
        tenant_id="tenant-1",
        provider=EhrProvider.EPIC,
        providers={
            EhrProvider.EPIC: ProviderSettings(
                ehr={"jkuServerUrl": "https://127.1/jwks", "soapUsername": "svc"},
                oauth={"oauthTokenUrl": "http://auth.example.test/token"},
            )
        },
    )
    ehr = settings.block(EhrProvider.EPIC, SettingsBlock.EHR)
    assert isinstance(ehr, EpicSettings) and ehr.jku_server_url == "https://127.1/jwks"
    oauth = settings.block(EhrProvider.EPIC, SettingsBlock.OAUTH)
    assert isinstance(oauth, EpicOAuthSettings)
    assert oauth.oauth_token_url == "http://auth.example.test/token"


def test_a_stored_block_is_validated_once_per_stored_version() -> None:
    settings = TenantSettings(
        tenant_id="tenant-1",
        provider=EhrProvider.ATHENA,
        providers={EhrProvider.ATHENA: ProviderSettings(ehr={"practiceId": "195900"})},
    )
    first = settings.block(EhrProvider.ATHENA, SettingsBlock.EHR)
    assert first is settings.block(EhrProvider.ATHENA, SettingsBlock.EHR)
    # A copy with another block reads its own; one that kept the block shares the model.
    changed = settings.model_copy(
        update={"providers": {EhrProvider.ATHENA: ProviderSettings(ehr={"practiceId": "7"})}}
    )
    reread = changed.block(EhrProvider.ATHENA, SettingsBlock.EHR)
    assert isinstance(reread, AthenaSettings) and reread.practice_id == "7"
    assert settings.block(EhrProvider.ATHENA, SettingsBlock.EHR) is first
    # What was read is no part of the settings' equality.
    assert settings == TenantSettings.model_validate(settings.model_dump())


def test_a_stored_block_no_rule_admits_fails_on_every_read() -> None:
    settings = TenantSettings(
        tenant_id="tenant-1",
        provider=EhrProvider.ATHENA,
        providers={EhrProvider.ATHENA: ProviderSettings(ehr={"noSuchSetting": 1})},
    )
    for _ in range(2):
        with pytest.raises(ValidationError):
            settings.block(EhrProvider.ATHENA, SettingsBlock.EHR)


def test_a_block_an_ehr_does_not_have_is_none_and_an_unconfigured_one_its_defaults() -> None:
    settings = TenantSettings(tenant_id="tenant-1")
    assert settings.block(EhrProvider.ELLKAY, SettingsBlock.FHIR) is None
    assert settings.block(EhrProvider.ELLKAY, SettingsBlock.EHR) == EllkaySettings()
    assert settings.provider_settings(EhrProvider.CERNER) == ProviderSettings()


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("providers.EPIC.ehr.jkuServerUrl", "integration:edit"),
        ("providers.EPIC.ehr.jwtIssuerUrl", "integration:edit"),
        ("providers.EPIC.ehr.useOauth", "integration:edit"),
        ("providers.EPIC.ehr.soapPassword", "secrets:write"),
        ("providers.EPIC.oauth.oauthTokenUrl", "integration:edit"),
        ("providers.ELLKAY.ehr.subscriberKey", "secrets:write"),
        ("providers.ATHENA.externalGateway.baseUrl", "integration:edit"),
        ("providers.ATHENA.externalGateway.externalGatewayId", "integration:edit"),
        ("providers.EPIC.jku", "integration:edit"),
        ("providers.EPIC.signingKeys", "integration:edit"),
        ("providers.EPIC.ehr.context", None),
        ("providers.ATHENA.externalGateway.name", None),
        ("providers.CERNER.fhir.ssnIdentifier", None),
        ("providers.ATHENA.oauth.oauthTokenUrl", None),  # Athena has no OAuth block
        ("providers.NOBODY.ehr.jkuServerUrl", None),
        ("provider", None),
        ("patientRestriction.expression", None),
    ],
)
def test_the_permission_a_change_needs_comes_from_the_field_that_holds_it(
    path: str, permission: str | None
) -> None:
    assert permission_to_change(path) == permission


def test_a_write_of_a_block_validates_every_ehrs_model_of_it() -> None:
    assert block_models(SettingsBlock.FHIR) == tuple(
        per_block[SettingsBlock.FHIR] for per_block in PROVIDER_BLOCKS.values()
        if SettingsBlock.FHIR in per_block
    )  # fmt: skip
    assert CernerFhirSettings in block_models(SettingsBlock.FHIR)
    # The external gateway as a connection: its id and base path URL are generated.
    assert block_models(SettingsBlock.EXTERNAL_GATEWAY) == (ExternalGatewayConnection,)
    assert ExternalGateway not in block_models(*SettingsBlock)


def test_the_guarded_settings_of_a_block_by_permission() -> None:
    guarded = guarded_settings(block_models(SettingsBlock.OAUTH), parts=("signing_keys",))
    assert guarded == {"integration:edit": ("oauthTokenUrl", "signingKeys")}
    ehr = guarded_settings(block_models(SettingsBlock.EHR))
    assert ehr["secrets:write"] == (
        "siteServiceKey",
        "soapPassword",
        "soapUsername",
        "subscriberKey",
    )
    assert "jkuServerUrl" in ehr["integration:edit"]
    # Without the write-only secrets, the SOAP username stays: it is plain text, guarded because
    # the stored password is sent with it.
    without_secrets = guarded_settings(block_models(SettingsBlock.EHR), secrets=False)
    assert without_secrets["secrets:write"] == ("soapUsername",)


def test_a_tenant_document_keeps_every_providers_blocks() -> None:
    settings = TenantSettings.model_validate(
        {
            "tenantId": "tenant-1",
            "provider": "ATHENA",
            "providers": {"EPIC": {"ehr": {"context": "Scheduling"}}, "ATHENA": {}},
            "updatedAt": datetime.now(UTC).isoformat(),
        }
    )
    assert settings.version == 0
    assert settings.provider_settings(EhrProvider.EPIC).ehr == {"context": "Scheduling"}


# Settings the gateway adds to the spec's: the audience verifyEpicJwt checks Epic's JWTs against.
ADDED = {"jwt_audience"}


@pytest.mark.parametrize(
    ("model", "count"),
    [
        (EpicHeaderSettings, 3), (EpicFhirSettings, 15), (EpicSettings, 31),
        (EpicOAuthSettings, 2), (AthenaFhirSettings, 2), (AthenaSettings, 17),
        (CernerFhirSettings, 21), (EllkaySettings, 12),
    ],
)  # fmt: skip
def test_every_setting_of_the_spec_is_in_its_model_with_a_description(
    model: type[SettingsModel], count: int
) -> None:
    fields = {name: f for name, f in model.model_fields.items() if name not in ADDED}
    assert len(fields) == count  # as the reading notes on the spec count them
    assert all(field.description for field in model.model_fields.values())
