"""resolvers/promotion.py called directly: rollback, export, an import's dry run and the import."""

from __future__ import annotations

from typing import Any

import pytest

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.readiness import CheckState
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.gateway import create_external_gateway
from ehr_gateway.resolvers.outcomes import Conflict, Failed
from ehr_gateway.resolvers.promotion import (
    EXPORT_FORMAT,
    export_settings,
    import_settings,
    preview_import,
    rollback_settings,
)
from ehr_gateway.resolvers.settings import get_settings, select_provider, update_block
from ehr_gateway.runtime.access import Forbidden, Permission, Role
from tests.resolvers.conftest import as_caller
from tests.resolvers.helpers import failed, saved

EPIC = EhrProvider.EPIC
CONNECTION = {
    "name": "Epic",
    "baseUrl": "https://ehr.example.test/api",
    "environment": "PRODUCTION",
}


async def configured_epic(context: Context, tenant_id: str) -> None:
    """Version 1: the provider; 2: the gateway; 3: the EHR block with its SOAP pair; 4: another
    context."""
    saved(await select_provider(context, tenant_id, EPIC, 0))
    saved(await create_external_gateway(context, tenant_id, CONNECTION, 1))
    patch = {"context": "Scheduling", "soapUsername": "svc", "soapPassword": "pw-1"}
    saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, patch, 2))
    saved(
        await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, {"context": "Refills"}, 3)
    )


async def test_a_rollback_stores_a_new_version_equal_to_the_old_one(
    context: Context, tenant_id: str
) -> None:
    await configured_epic(context, tenant_id)

    assert saved(await rollback_settings(context, tenant_id, 3, 4)) == 5

    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.providers[EPIC].ehr["context"] == "Scheduling"


async def test_a_rollback_keeps_the_current_gateway_id(context: Context, tenant_id: str) -> None:
    await configured_epic(context, tenant_id)
    before = await get_settings(context, tenant_id)
    assert before is not None and before.providers[EPIC].external_gateway is not None

    saved(await rollback_settings(context, tenant_id, 1, None))

    after = await get_settings(context, tenant_id)
    assert after is not None
    assert after.providers[EPIC].external_gateway == before.providers[EPIC].external_gateway


async def test_a_rollback_to_a_stale_base_is_a_conflict_and_to_no_version_is_refused(
    context: Context, tenant_id: str
) -> None:
    await configured_epic(context, tenant_id)
    assert await rollback_settings(context, tenant_id, 3, 2) == Conflict(4)
    assert failed(await rollback_settings(context, tenant_id, 99, None)) == [
        (("toVersion",), "UNKNOWN_VERSION")
    ]
    assert failed(await rollback_settings(context, tenant_id, 0, None)) == [
        (("toVersion",), "OUT_OF_RANGE")
    ]


async def test_an_editor_may_not_roll_a_trust_setting_back(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    jku = {"jkuServerUrl": "https://keys.example.test/jwks"}
    saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, jku, 1))
    editor = as_caller(context, [Role.EDITOR], [tenant_id])
    with pytest.raises(Forbidden) as denied:
        await rollback_settings(editor, tenant_id, 1, 2)
    assert denied.value.permission is Permission.INTEGRATE
    assert denied.value.fields == ("providers.EPIC.ehr.jkuServerUrl",)


async def export_of(context: Context, tenant_id: str) -> dict[str, Any]:
    document = await export_settings(context, tenant_id)
    assert document is not None
    return document


async def test_an_export_carries_no_secret_and_no_identity(
    context: Context, tenant_id: str
) -> None:
    await configured_epic(context, tenant_id)
    document = await export_of(context, tenant_id)
    assert document["format"] == EXPORT_FORMAT and document["version"] == 4
    epic = document["providers"]["EPIC"]
    assert epic["ehr"] == {"context": "Refills", "soapUsername": "svc"}
    assert set(epic["externalGateway"]) == {"name", "baseUrl", "environment"}
    assert await export_settings(context, "tenant-never-written") is None


async def test_an_import_dry_run_shows_the_changes_and_readiness_and_stores_nothing(
    context: Context, tenant_id: str, tenant_id_2: str
) -> None:
    await configured_epic(context, tenant_id)
    document = await export_of(context, tenant_id)

    preview = await preview_import(context, tenant_id_2, document)

    assert not isinstance(preview, Failed)
    paths = {change["path"] for change in preview.changes}
    assert {"provider", "providers.EPIC.ehr.context", "providers.EPIC.ehr.soapUsername"} <= paths
    # The password could not travel: the target would lack it.
    state = {check.path: check.state for check in preview.readiness.checks}
    assert state[("ehr", "soapPassword")] is CheckState.MISSING
    assert await get_settings(context, tenant_id_2) is None


async def test_an_import_stores_the_document_as_one_version(
    context: Context, tenant_id: str, tenant_id_2: str
) -> None:
    await configured_epic(context, tenant_id)
    document = await export_of(context, tenant_id)

    assert saved(await import_settings(context, tenant_id_2, document, 0)) == 1

    target = await get_settings(context, tenant_id_2)
    source = await get_settings(context, tenant_id)
    assert target is not None and source is not None
    assert target.providers[EPIC].ehr == {"context": "Refills", "soapUsername": "svc"}
    gateways = target.providers[EPIC].external_gateway, source.providers[EPIC].external_gateway
    assert gateways[0] is not None and gateways[1] is not None
    assert gateways[0].external_gateway_id != gateways[1].external_gateway_id  # its own id


@pytest.mark.parametrize(
    ("document", "refusal"),
    [
        pytest.param([], (("document",), "NOT_AN_EXPORT"), id="not-an-object"),
        pytest.param({"format": "other"}, (("document", "format"), "NOT_AN_EXPORT"), id="format"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 2},
                     (("document", "formatVersion"), "UNSUPPORTED_VERSION"), id="version"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 1, "providers": {}, "x": 1},
                     (("document", "x"), "UNKNOWN_FIELD"), id="unknown-field"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 1, "providers": {"EPIC": {
                      "ehr": {"soapPassword": "pw-in-a-document"}}}},
                     (("document", "providers", "EPIC", "ehr"), "INVALID"), id="secret"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 1, "providers": {"EPIC": {
                      "ehr": {"context": ""}}}},
                     (("document", "providers", "EPIC", "ehr", "context"), "TOO_SHORT"),
                     id="rule"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 1, "providers": {"EPIC": {
                      "fhir": {"ssn_identifier": "urn:oid:1.2.3"}}}},
                     (("document", "providers", "EPIC", "fhir", "ssn_identifier"),
                      "UNKNOWN_FIELD"), id="python-name"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 1, "providers": {},
                      "patientRestriction": "age + 1"},
                     (("document", "patientRestriction"), "NOT_BOOLEAN"), id="restriction"),
        pytest.param({"format": EXPORT_FORMAT, "formatVersion": 1, "providers": {"ELLKAY": {
                      "fhir": {}}}},
                     (("document", "providers", "ELLKAY", "fhir"), "NOT_APPLICABLE"),
                     id="block-the-ehr-lacks"),
    ],
)  # fmt: skip
async def test_a_document_is_validated_whole_before_anything_is_stored(
    context: Context, tenant_id: str, document: Any, refusal: tuple[tuple[str, ...], str]
) -> None:
    assert failed(await preview_import(context, tenant_id, document)) == [refusal]
    assert failed(await import_settings(context, tenant_id, document, None)) == [refusal]
    assert await get_settings(context, tenant_id) is None


async def test_an_import_keeps_the_targets_own_secrets(
    context: Context, tenant_id: str, tenant_id_2: str
) -> None:
    await configured_epic(context, tenant_id)
    document = await export_of(context, tenant_id)
    saved(await select_provider(context, tenant_id_2, EPIC, 0))
    own = {"soapUsername": "target-svc", "soapPassword": "target-pw"}
    saved(await update_block(context, tenant_id_2, SettingsBlock.EHR, EPIC, own, 1))
    before = await get_settings(context, tenant_id_2)
    assert before is not None

    saved(await import_settings(context, tenant_id_2, document, 2))

    after = await get_settings(context, tenant_id_2)
    assert after is not None
    assert after.providers[EPIC].ehr["soapUsername"] == "svc"  # the document's
    assert after.providers[EPIC].ehr["soapPassword"] == before.providers[EPIC].ehr["soapPassword"]


async def test_an_editor_may_not_import_a_trust_setting(
    context: Context, tenant_id: str, tenant_id_2: str
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    jku = {"jkuServerUrl": "https://keys.example.test/jwks"}
    saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, jku, 1))
    document = await export_of(context, tenant_id)
    editor = as_caller(context, [Role.EDITOR], [tenant_id_2])
    with pytest.raises(Forbidden) as denied:
        await import_settings(editor, tenant_id_2, document, None)
    assert denied.value.permission is Permission.INTEGRATE
    assert "providers.EPIC.ehr.jkuServerUrl" in denied.value.fields
    assert await get_settings(context, tenant_id_2) is None
