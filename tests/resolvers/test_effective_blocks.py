"""A block as it takes effect (its stored data validated, unset identifiers filled with the
deployment's defaults) is worked out once per stored version, keyed by the block's stored data
itself: a version read back after a save takes it over for every block whose data is equal,
and works it out afresh for a block whose data changed."""

from __future__ import annotations

from typing import Any, cast

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.identifiers import IdentifierDefaults, with_identifier_defaults
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.settings import effective_block

EPIC = EhrProvider.EPIC
DEFAULTS = IdentifierDefaults(mrn_identifier="urn:oid:1.2.840.114350")


class _Deployment:
    identifier_defaults = DEFAULTS


class _Services:
    deployment = _Deployment()


CONTEXT = cast(Context, _Services())


def settings_with(fhir: dict[str, Any], ehr: dict[str, Any]) -> TenantSettings:
    return TenantSettings(
        tenant_id="effective",
        provider=EPIC,
        providers={EPIC: ProviderSettings(fhir=fhir, ehr=ehr)},
    )


def test_the_effective_block_is_the_validated_block_with_the_defaults() -> None:
    settings = settings_with({"ssnIdentifier": "urn:oid:2.16.840.1.113883.4.1"}, {})
    fhir = effective_block(CONTEXT, settings, SettingsBlock.FHIR)
    validated = settings.block(EPIC, SettingsBlock.FHIR)
    assert validated is not None
    assert fhir == with_identifier_defaults(validated, DEFAULTS)
    assert getattr(fhir, "mrn_identifier") == "urn:oid:1.2.840.114350"  # noqa: B009
    assert effective_block(CONTEXT, settings, SettingsBlock.FHIR) is fhir  # once per version
    # A block this EHR does not have, and no EHR at all.
    assert effective_block(CONTEXT, settings, SettingsBlock.EXTERNAL_GATEWAY) is None
    assert effective_block(CONTEXT, TenantSettings(tenant_id="none"), SettingsBlock.FHIR) is None


def test_a_version_read_back_takes_over_equal_blocks_and_redoes_changed_ones() -> None:
    written = settings_with({"mrnIdentifier": "urn:oid:1.2.3"}, {"context": "Scheduling"})
    fhir = effective_block(CONTEXT, written, SettingsBlock.FHIR)
    ehr = effective_block(CONTEXT, written, SettingsBlock.EHR)
    # Read back: the same data in new objects, and one block changed.
    read = settings_with({"mrnIdentifier": "urn:oid:1.2.3"}, {"context": "Inbox"})
    read.adopt_derived(written)

    assert effective_block(CONTEXT, read, SettingsBlock.FHIR) is fhir
    changed = effective_block(CONTEXT, read, SettingsBlock.EHR)
    assert changed is not ehr
    assert getattr(changed, "context") == "Inbox"  # noqa: B009
