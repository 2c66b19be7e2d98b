"""What differs between two versions of a tenant's settings, with secrets shown only as what
may be shown of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import SettingsBlock

# providers.<EHR>.<block>.<field>: deeper paths (a secret's ciphertext, say) name their field.
_PATH_DEPTH = 4


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two JSON-like trees (lists compare whole; a
    missing object or list counts as an empty one: no setting holds null as a list)."""
    deep_enough = prefix.count(".") + 1 >= _PATH_DEPTH
    if (isinstance(before, dict) or isinstance(after, dict)) and not deep_enough:
        before, after = before or {}, after or {}
        paths: list[str] = []
        for key in sorted(set(before) | set(after)):
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.extend(changed_paths(before.get(key), after.get(key), path))
        return paths
    if before == after or (before is None and after == []) or (after is None and before == []):
        return []
    return [prefix]


def settings_tree(settings: TenantSettings) -> dict[str, Any]:
    """The settings as a JSON tree, without the bookkeeping fields."""
    return settings.model_dump(
        mode="json",
        by_alias=True,
        exclude={"version", "updated_at", "updated_by", "tenant_id"},
        exclude_computed_fields=True,
    )


def redact(value: Any) -> Any:
    """``value`` with every stored secret replaced by what may be shown of it."""
    if isinstance(value, Mapping):
        if "ciphertext" in value:
            return {
                "isSet": value.get("ciphertext") is not None,
                "fingerprint": value.get("fingerprint"),
                "updatedAt": value.get("updatedAt"),
            }
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def value_at(tree: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``tree``; None where there is none."""
    for key in path.split("."):
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(key)
    return tree


def field_changes(before: Any, after: Any, paths: list[str]) -> list[dict[str, Any]]:
    """Each changed path with its value before and after, secrets redacted."""
    return [
        {
            "path": path,
            "before": redact(value_at(before, path)),
            "after": redact(value_at(after, path)),
        }
        for path in paths
    ]


# The block each stored part of a provider's settings belongs to.
_PROVIDER_PARTS = {
    "externalGateway": SettingsBlock.EXTERNAL_GATEWAY,
    "headers": SettingsBlock.HEADERS,
    "fhir": SettingsBlock.FHIR,
    "ehr": SettingsBlock.EHR,
    "jku": SettingsBlock.EHR,
    "oauth": SettingsBlock.OAUTH,
    "signingKeys": SettingsBlock.OAUTH,
}


def blocks_of(paths: list[str]) -> list[SettingsBlock]:
    """The blocks the changed ``paths`` belong to, in the order of SettingsBlock."""
    found: set[SettingsBlock] = set()
    for path in paths:
        parts = path.split(".")
        if parts[0] == "provider":
            found.add(SettingsBlock.PROVIDER)
        elif parts[0] == "patientRestriction":
            found.add(SettingsBlock.PATIENT_RESTRICTION)
        elif parts[0] == "providers" and len(parts) > 2 and parts[2] in _PROVIDER_PARTS:
            found.add(_PROVIDER_PARTS[parts[2]])
    return [block for block in SettingsBlock if block in found]
