"""What differs between two versions (ehr/changes.py), with secrets redacted."""

from __future__ import annotations

from typing import Any

from ehr_gateway.ehr.blocks import ProviderSettings, TenantSettings
from ehr_gateway.ehr.changes import (
    blocks_of,
    changed_paths,
    field_changes,
    redact,
    settings_tree,
    value_at,
)
from ehr_gateway.ehr.common import EhrProvider, PatientRestriction, SettingsBlock

SECRET = {"ciphertext": "c2VhbGVk", "keyId": "k1", "fingerprint": "f00d", "updatedAt": "2026"}


def test_changed_paths_go_down_to_a_field_of_a_block() -> None:
    before = {"providers": {"EPIC": {"ehr": {"context": "A", "soapPassword": {"ciphertext": "1"}}}}}
    after = {"providers": {"EPIC": {"ehr": {"context": "B", "soapPassword": {"ciphertext": "2"}}}}}
    assert changed_paths(before, after) == [
        "providers.EPIC.ehr.context",
        "providers.EPIC.ehr.soapPassword",  # a secret's ciphertext is its field's change
    ]


def test_a_missing_object_or_list_is_an_empty_one_and_lists_compare_whole() -> None:
    assert changed_paths({"a": None}, {"a": {}}) == []
    # An EHR's settings first stored, or imported: its empty lists are no change.
    assert changed_paths({}, {"a": {"keys": []}}) == []
    assert changed_paths({"a": {"keys": []}}, {}) == []
    assert changed_paths({}, {"a": {"keys": [1]}}) == ["a.keys"]
    assert changed_paths({}, {"a": {"b": 1}}) == ["a.b"]
    assert changed_paths({"l": [1, 2]}, {"l": [2, 1]}) == ["l"]
    assert changed_paths({"x": 1}, {"x": 1}) == []


def test_a_secret_is_shown_only_as_whether_it_is_set() -> None:
    assert redact({"ehr": {"soapPassword": SECRET, "context": "A"}, "l": [SECRET]}) == {
        "ehr": {
            "soapPassword": {"isSet": True, "fingerprint": "f00d", "updatedAt": "2026"},
            "context": "A",
        },
        "l": [{"isSet": True, "fingerprint": "f00d", "updatedAt": "2026"}],
    }
    assert redact({"ciphertext": None})["isSet"] is False


def test_field_changes_name_each_path_with_its_values_before_and_after_redacted() -> None:
    before: dict[str, Any] = {"providers": {"EPIC": {"ehr": {}}}}
    after = {"providers": {"EPIC": {"ehr": {"soapPassword": SECRET}}}}
    paths = changed_paths(before, after)
    (change,) = field_changes(before, after, paths)
    assert change["path"] == "providers.EPIC.ehr.soapPassword"
    assert change["before"] is None
    assert change["after"]["isSet"] is True and "ciphertext" not in change["after"]


def test_value_at_a_path_that_is_not_there_is_none() -> None:
    assert value_at({"a": {"b": 1}}, "a.b") == 1
    assert value_at({"a": 1}, "a.b") is None
    assert value_at({}, "a") is None


def test_the_blocks_of_changed_paths_in_settings_block_order() -> None:
    paths = [
        "providers.EPIC.signingKeys", "providers.EPIC.jku", "patientRestriction.expression",
        "provider", "providers.EPIC.externalGateway.name", "providers.EPIC.headers.epicUserId",
        "providers.EPIC.unknown.x",
    ]  # fmt: skip
    assert blocks_of(paths) == [
        SettingsBlock.PROVIDER, SettingsBlock.EXTERNAL_GATEWAY, SettingsBlock.HEADERS,
        SettingsBlock.PATIENT_RESTRICTION, SettingsBlock.EHR, SettingsBlock.OAUTH,
    ]  # fmt: skip


def test_the_settings_tree_leaves_out_the_bookkeeping() -> None:
    settings = TenantSettings(
        tenant_id="tenant-1", version=7, updated_by="erin", provider=EhrProvider.CERNER,
        patient_restriction=PatientRestriction(expression="age < 18"),
        providers={EhrProvider.CERNER: ProviderSettings(fhir={"useBatch": True})},
    )  # fmt: skip
    tree = settings_tree(settings)
    assert set(tree) == {"provider", "patientRestriction", "providers"}
    paths = changed_paths(settings_tree(TenantSettings(tenant_id="tenant-1")), tree)
    assert {"patientRestriction.expression", "provider", "providers.CERNER.fhir.useBatch"} <= set(
        paths
    )
    assert not [path for path in paths if path.split(".")[0] in {"version", "updatedBy"}]
