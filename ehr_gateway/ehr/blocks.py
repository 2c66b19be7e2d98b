"""Which settings model each EHR uses for each block, and the tenant document that holds them."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from operator import is_
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, PrivateAttr
from pydantic.fields import FieldInfo

from ehr_gateway.ehr.athena import AthenaFhirSettings, AthenaSettings
from ehr_gateway.ehr.cerner import CernerFhirSettings, CernerSettings
from ehr_gateway.ehr.common import (
    EhrProvider,
    ExternalGateway,
    ExternalGatewayConnection,
    GenericHeaderSettings,
    JkuSnapshot,
    PatientRestriction,
    SettingsBlock,
)
from ehr_gateway.ehr.ellkay import EllkaySettings
from ehr_gateway.ehr.epic import (
    EpicFhirSettings,
    EpicHeaderSettings,
    EpicOAuthSettings,
    EpicSettings,
)
from ehr_gateway.ehr.fields import TRUST, SettingsModel, guarded_by
from ehr_gateway.ehr.oauth import SigningKey

# The blocks kept per provider: switching provider and back restores them.
PROVIDER_BLOCKS: dict[EhrProvider, dict[SettingsBlock, type[BaseModel]]] = {
    EhrProvider.EPIC: {
        SettingsBlock.HEADERS: EpicHeaderSettings,
        SettingsBlock.FHIR: EpicFhirSettings,
        SettingsBlock.EHR: EpicSettings,
        SettingsBlock.OAUTH: EpicOAuthSettings,
    },
    EhrProvider.ATHENA: {
        SettingsBlock.HEADERS: GenericHeaderSettings,
        SettingsBlock.FHIR: AthenaFhirSettings,
        SettingsBlock.EHR: AthenaSettings,
    },
    EhrProvider.CERNER: {
        SettingsBlock.HEADERS: GenericHeaderSettings,
        SettingsBlock.FHIR: CernerFhirSettings,
        SettingsBlock.EHR: CernerSettings,
    },
    EhrProvider.ELLKAY: {
        SettingsBlock.HEADERS: GenericHeaderSettings,
        SettingsBlock.EHR: EllkaySettings,
    },
}

# Field name of each block in ProviderSettings.
BLOCK_FIELDS: dict[SettingsBlock, str] = {
    SettingsBlock.EXTERNAL_GATEWAY: "external_gateway",
    SettingsBlock.HEADERS: "headers",
    SettingsBlock.FHIR: "fhir",
    SettingsBlock.EHR: "ehr",
    SettingsBlock.OAUTH: "oauth",
}


# Stored values were validated when written, under the rules of that day: one that a later rule
# refuses (a host saved before ambiguous hosts were refused) must still load, so the tenant stays
# readable and the value can be replaced; the outbound client still refuses to call it.
STORED_CONTEXT = {"allow_insecure_http": True, "stored": True}


class ProviderSettings(SettingsModel):
    """The blocks of one EHR as stored: each holds only the fields that differ from their
    defaults. A block the EHR does not have stays empty."""

    external_gateway: ExternalGateway | None = None
    headers: dict[str, Any] = Field(default_factory=dict)
    fhir: dict[str, Any] = Field(default_factory=dict)
    ehr: dict[str, Any] = Field(default_factory=dict)
    oauth: dict[str, Any] = Field(default_factory=dict)
    # Epic: the JKU as an integrator's discovery recorded it; verifyEpicJwt takes keys only
    # from its URL.
    jku: Annotated[JkuSnapshot | None, TRUST] = None
    # Epic OAuth client keys, newest first; the previous one stays published during rotation.
    signing_keys: Annotated[list[SigningKey], TRUST] = Field(default_factory=list)


Derived = TypeVar("Derived")


class _Derived(dict[Hashable, tuple[tuple[object, ...], Any]]):
    """What was computed from a TenantSettings' stored data, with the objects it came from.

    Every derived value equals any other: a model's equality (which pydantic extends to private
    attributes) must stay that of its settings, whatever was read from them."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Derived)

    __hash__ = None


class TenantSettings(SettingsModel):
    """One tenant's integration settings: the active provider and every provider's blocks."""

    # One stored version is read by many requests (the settings cache keeps it): its blocks are
    # validated once, on first read, not on every read. An entry is keyed by the very objects it
    # was computed from and reused only while they are the ones held (a copy with a replaced
    # block misses), since nothing changes a stored block in place.
    _derived: _Derived = PrivateAttr(default_factory=_Derived)

    tenant_id: str
    version: int = 0
    provider: EhrProvider | None = None
    patient_restriction: PatientRestriction = Field(default_factory=PatientRestriction)
    providers: dict[EhrProvider, ProviderSettings] = Field(default_factory=dict)
    updated_at: datetime | None = None
    updated_by: str | None = None

    def __copy__(self) -> TenantSettings:
        # model_copy shares private attributes: a copy keeps what it shares with this version
        # (entries are checked by identity on use) but records its own reads apart.
        copied = super().__copy__()
        copied._derived = _Derived(self._derived)
        return copied

    def provider_settings(self, provider: EhrProvider) -> ProviderSettings:
        return self.providers.get(provider) or ProviderSettings()

    def block(self, provider: EhrProvider, block: SettingsBlock) -> BaseModel | None:
        """The stored block, validated into its model; None when this EHR has no such block."""
        model = PROVIDER_BLOCKS[provider].get(block)
        if model is None:
            return None
        raw = getattr(self.provider_settings(provider), BLOCK_FIELDS[block])
        # Stored blocks were validated when written, under that deployment's URL policy: the
        # same validation as ever, so a block today's rules refuse loads (or fails) as before.
        return self.derived(
            ("block", provider, block),
            (raw,),
            lambda: model.model_validate(raw, context=STORED_CONTEXT),
        )

    def adopt_derived(self, earlier: TenantSettings) -> None:
        """Take over what ``earlier`` computed for every block stored here with equal data.

        A write stores its settings and then reads them back (``earlier`` as written, ``self``
        as read): every block the write left alone is the same data in a new object, and
        validating it again was the most of a write's readiness assessment. A block's
        validation depends on its data alone, and the data read back is a JSON round trip of
        the data written: equal to it where the write held JSON data, unequal where it held
        anything that does not survive the trip (a tuple, a date)."""
        for key, (sources, value) in earlier._derived.items():
            if not (
                isinstance(key, tuple)
                and len(key) == 3
                and isinstance(key[1], EhrProvider)
                and isinstance(key[2], SettingsBlock)
                and key[2] in BLOCK_FIELDS
                and sources
            ):
                # Keyed by objects (the deployment's defaults) that stay the same objects
                # here: a hit only where they are.
                self._derived.setdefault(key, (sources, value))
                continue
            # Computed from one block's stored data (the validated block, its effective form)
            # and objects that stay the same: the same where the data read back is equal.
            _, provider, block = key
            raw = getattr(self.provider_settings(provider), BLOCK_FIELDS[block])
            if type(raw) is type(sources[0]) and raw == sources[0]:
                self._derived[key] = ((raw, *sources[1:]), value)

    def derived(
        self, key: Hashable, sources: tuple[object, ...], build: Callable[[], Derived]
    ) -> Derived:
        """``build()``, computed once while ``sources`` (compared by identity) are unchanged.

        What it returns is shared by every later reader: it must not be changed in place."""
        # Read from pydantic's store of private attributes directly: ``self._derived`` first
        # fails the ordinary lookup (an AttributeError made and caught) and then runs pydantic's
        # __getattr__, some 30 times the cost of the dict lookup, and a settings read asks here
        # about ten times.
        private = self.__pydantic_private__
        derived: _Derived = private["_derived"] if private is not None else self._derived
        entry = derived.get(key)
        if (
            entry is not None
            and len(entry[0]) == len(sources)
            # map and operator.is_ rather than a generator: the same test, without a frame
            and all(map(is_, entry[0], sources))
        ):
            value: Derived = entry[1]
            return value
        value = build()  # raises as before, and nothing is kept
        derived[key] = (sources, value)
        return value


def stored_form(model: BaseModel) -> dict[str, Any]:
    """A block as stored: camelCase keys, JSON values, only what differs from the defaults (so a
    default the spec changes later applies to every tenant that kept it)."""
    return model.model_dump(
        mode="json", by_alias=True, exclude_defaults=True, exclude_computed_fields=True
    )


def apply_patch(
    current: BaseModel, patch: dict[str, Any], context: dict[str, Any] | None = None
) -> BaseModel:
    """``current`` with ``patch`` applied: a key present sets the field, a key whose value is None
    clears it back to its default, an absent key keeps the stored value. The result is validated
    as a whole, so cross-field rules see the final state. Raises pydantic's ValidationError."""
    data = current.model_dump(mode="json", by_alias=True, exclude_computed_fields=True)
    for key, value in patch.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return type(current).model_validate(data, context=context)


def _field_named(model: type[BaseModel], alias: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field
    return None


def permission_to_change(path: str) -> str | None:
    """The permission that changing the setting at ``path`` (a dotted path as ``changed_paths``
    gives them, e.g. ``providers.EPIC.ehr.jkuServerUrl``) needs beyond its block's, from the
    ``Guarded`` marker on the model field that holds it (or on the part of the provider's
    settings that holds that field)."""
    parts = path.split(".")
    if len(parts) < 3 or parts[0] != "providers":
        return None  # the provider choice and the patient restriction guard nothing more
    try:
        provider = EhrProvider(parts[1])
    except ValueError:
        return None
    part = _field_named(ProviderSettings, parts[2])
    if part is None:
        return None
    permission = guarded_by(part)
    if permission is not None or len(parts) < 4:
        return permission
    # What the part holds: a block (stored as a plain dict) or a model of its own.
    model: type[BaseModel] | None = None
    for block, name in BLOCK_FIELDS.items():
        if ProviderSettings.model_fields[name] is part:
            model = PROVIDER_BLOCKS[provider].get(block)
            if block is SettingsBlock.EXTERNAL_GATEWAY:
                model = ExternalGateway
    field = _field_named(model, parts[3]) if model is not None else None
    return guarded_by(field) if field is not None else None


def block_models(*blocks: SettingsBlock) -> tuple[type[BaseModel], ...]:
    """Every EHR's model of each of ``blocks``, as a write of those blocks validates them (the
    external gateway as a connection: its id and base path URL are generated, never sent)."""
    models: list[type[BaseModel]] = []
    for block in blocks:
        if block is SettingsBlock.EXTERNAL_GATEWAY:
            models.append(ExternalGatewayConnection)
        models.extend(
            model for per_block in PROVIDER_BLOCKS.values() if (model := per_block.get(block))
        )
    return tuple(dict.fromkeys(models))


def guarded_settings(
    models: Iterable[type[BaseModel]], *, parts: Iterable[str] = (), secrets: bool = True
) -> dict[str, tuple[str, ...]]:
    """Each permission that changing a setting of ``models`` needs beyond its block's, with the
    settings (API names, sorted) that need it, read from their ``Guarded`` markers; ``parts``
    adds guarded fields of ``ProviderSettings`` itself (``jku``). Without ``secrets``, write-only
    secrets are left out (a write that keeps the tenant's own)."""
    fields: list[tuple[str, FieldInfo]] = [
        (field.alias or name, field)
        for model in models
        for name, field in model.model_fields.items()
    ]
    fields.extend(
        (ProviderSettings.model_fields[part].alias or part, ProviderSettings.model_fields[part])
        for part in parts
    )
    found: dict[str, set[str]] = {}
    for name, field in fields:
        permission = guarded_by(field)
        if permission is None:
            continue
        if not secrets and getattr(field.annotation, "is_write_only_secret", False):
            continue
        found.setdefault(permission, set()).add(name)
    return {permission: tuple(sorted(names)) for permission, names in sorted(found.items())}
