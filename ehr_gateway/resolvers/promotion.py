"""Rollback and promotion: make a new version equal to an old one, and carry a tenant's
configuration to another tenant (a sandbox's to production) as a portable document.

Neither carries identities or secrets. The external gateway id and base path URL, and the OAuth
signing keys, stay those of the tenant written to: a rotated id or key was rotated to revoke it.
An export holds no secret at all; an import keeps the target's own secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ehr_gateway.ehr.blocks import (
    BLOCK_FIELDS,
    PROVIDER_BLOCKS,
    ProviderSettings,
    TenantSettings,
    stored_form,
)
from ehr_gateway.ehr.changes import changed_paths, field_changes, settings_tree
from ehr_gateway.ehr.common import (
    EhrProvider,
    ExternalGateway,
    ExternalGatewayConnection,
    SettingsBlock,
)
from ehr_gateway.ehr.errors import FieldError, field_errors
from ehr_gateway.ehr.readiness import Readiness, assess
from ehr_gateway.ehr.restriction import RestrictionError, compile_restriction
from ehr_gateway.ehr.secret import IMPORTING, StoredSecret
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.gateway import base_path_url, new_gateway_id
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.resolvers.settings import get_settings
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.resolvers.writes import write

EXPORT_FORMAT = "ehr-gateway/settings"
EXPORT_FORMAT_VERSION = 1
_BLOCKS = (SettingsBlock.HEADERS, SettingsBlock.FHIR, SettingsBlock.EHR, SettingsBlock.OAUTH)
_CONNECTION_FIELDS = set(ExternalGatewayConnection.model_fields)


def _secret_keys(model: type[BaseModel]) -> set[str]:
    return {
        field.alias or name
        for name, field in model.model_fields.items()
        if field.annotation is StoredSecret
    }


def _secret_names(model: type[BaseModel]) -> set[str]:
    """Every key that could name a secret of ``model`` in a document: its alias and its Python
    name. Imports are read by alias only, but a secret is refused by either name so the document
    is told why."""
    return _secret_keys(model) | {
        name for name, field in model.model_fields.items() if field.annotation is StoredSecret
    }


def _with_identities(
    context: Context, wanted: TenantSettings, current: TenantSettings
) -> TenantSettings:
    """``wanted`` with the current external gateway ids and signing keys of every provider.
    An external gateway id comes only from the tenant as it is now: an earlier one may have
    been rotated to revoke it, so a provider with none now gets its connection back under a
    new id, never history's."""
    providers = dict(wanted.providers)
    for provider in set(providers) | set(current.providers):
        now = current.provider_settings(provider)
        target = providers.get(provider) or ProviderSettings()
        gateway = target.external_gateway
        if gateway is not None and now.external_gateway is not None:
            gateway = gateway.model_copy(
                update={
                    "external_gateway_id": now.external_gateway.external_gateway_id,
                    "base_path_url": now.external_gateway.base_path_url,
                    "created_at": now.external_gateway.created_at,
                }
            )
        elif now.external_gateway is not None:
            gateway = now.external_gateway  # never drop a live id by going back
        elif gateway is not None:
            gateway_id = new_gateway_id()
            gateway = gateway.model_copy(
                update={
                    "external_gateway_id": gateway_id,
                    "base_path_url": base_path_url(context, gateway_id),
                    "created_at": datetime.now(UTC),
                }
            )
        providers[provider] = target.model_copy(
            update={"external_gateway": gateway, "signing_keys": now.signing_keys}
        )
    return wanted.model_copy(update={"providers": providers})


async def rollback_settings(
    context: Context, tenant_id: str, to_version: int, expected_version: int | None
) -> Outcome:
    """A new version whose settings equal version ``to_version``'s (identities aside)."""
    refused = check_tenant_id(tenant_id)
    if refused:
        return refused
    if to_version < 1:
        return Failed.one(("toVersion",), "OUT_OF_RANGE", "must be 1 or more")
    # Verified as a roll-forward verifies what it applies: the write below chains the result.
    old = await context.repository.verified_version(tenant_id, to_version)
    if old is None:
        return Failed.one(("toVersion",), "UNKNOWN_VERSION", "the tenant has no such version")
    # A version past the document's is not one the tenant has been at: an entry ahead of it
    # is a write still finishing, or one no gateway will apply.
    current = await context.repository.get(tenant_id)
    if current is None or to_version > current.version:
        return Failed.one(
            ("toVersion",), "OUT_OF_RANGE",
            "must be at most the current version"
            + ("" if current is None else f", {current.version}"),
        )  # fmt: skip
    refused = _under_todays_rules(context, old.settings)
    if refused is not None:
        return refused

    def change(current: TenantSettings) -> TenantSettings:
        return _with_identities(
            context,
            old.settings.model_copy(update={"tenant_id": tenant_id, "version": current.version}),
            current,
        )

    return await write(context, tenant_id, expected_version, None, change)


def _under_todays_rules(context: Context, settings: TenantSettings) -> Failed | None:
    """Why ``settings`` (an old version, read as stored: under the rules of its day) may not be
    written today: every block, connection and restriction validated as an import validates
    them. A rollback is a write, and must not bring back a value an update would refuse."""
    root = ("toVersion",)
    errors: list[FieldError] = []
    rules = {**context.validation_context, IMPORTING: True}
    expression = settings.patient_restriction.expression
    if expression is not None:
        try:
            compile_restriction(expression)
        except RestrictionError as error:
            errors.append(FieldError((*root, "patientRestriction"), error.code, error.message))
    for provider, stored in settings.providers.items():
        path = (*root, "providers", provider.value)
        for block, model in PROVIDER_BLOCKS[provider].items():
            if block not in _BLOCKS:
                continue
            try:
                model.model_validate(getattr(stored, BLOCK_FIELDS[block]), context=rules)
            except ValidationError as error:
                errors.extend(field_errors(error, (*path, _alias(block))))
        if stored.external_gateway is not None:
            connection = stored.external_gateway.model_dump(include=_CONNECTION_FIELDS)
            try:
                ExternalGatewayConnection.model_validate(connection, context=rules)
            except ValidationError as error:
                errors.extend(field_errors(error, (*path, "externalGateway")))
    return Failed(tuple(errors)) if errors else None


async def export_settings(context: Context, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's configuration as a portable document: no secrets, no identities."""
    settings = await get_settings(context, tenant_id)
    if settings is None:
        return None
    providers: dict[str, Any] = {}
    for provider, stored in settings.providers.items():
        blocks: dict[str, Any] = {}
        if stored.external_gateway is not None:
            blocks["externalGateway"] = stored.external_gateway.model_dump(
                mode="json", by_alias=True, include=_CONNECTION_FIELDS, exclude_none=True
            )
        for block, model in PROVIDER_BLOCKS[provider].items():
            if block in _BLOCKS:
                raw = getattr(stored, BLOCK_FIELDS[block])
                secrets = _secret_keys(model)
                blocks[_alias(block)] = {k: v for k, v in raw.items() if k not in secrets}
        providers[provider.value] = blocks
    return {
        "format": EXPORT_FORMAT,
        "formatVersion": EXPORT_FORMAT_VERSION,
        "tenantId": tenant_id,
        "version": settings.version,
        "exportedAt": datetime.now(UTC).isoformat(),
        "provider": settings.provider.value if settings.provider else None,
        "patientRestriction": settings.patient_restriction.expression,
        "providers": providers,
    }


def _alias(block: SettingsBlock) -> str:
    field = ProviderSettings.model_fields[BLOCK_FIELDS[block]]
    return field.alias or BLOCK_FIELDS[block]


def _read_document(
    context: Context, document: Any, current: TenantSettings
) -> TenantSettings | Failed:
    """The settings ``document`` describes, applied over ``current``: fully validated."""
    root = ("document",)
    if not isinstance(document, dict):
        return Failed.one(root, "NOT_AN_EXPORT", "must be a JSON object made by exportSettings")
    if document.get("format") != EXPORT_FORMAT:
        return Failed.one((*root, "format"), "NOT_AN_EXPORT", f"must be {EXPORT_FORMAT!r}")
    version = document.get("formatVersion")
    # By type as well as value: JSON's 1.0 and true compare equal to 1 in Python, and neither is
    # what an export writes.
    if type(version) is not int or version != EXPORT_FORMAT_VERSION:
        return Failed.one(
            (*root, "formatVersion"),
            "UNSUPPORTED_VERSION",
            f"must be the integer {EXPORT_FORMAT_VERSION}",
        )
    unknown = set(document) - {"format", "formatVersion", "tenantId", "version", "exportedAt",
                               "provider", "patientRestriction", "providers"}  # fmt: skip
    if unknown:
        return Failed.one((*root, sorted(unknown)[0]), "UNKNOWN_FIELD", "is not part of an export")
    errors: list[FieldError] = []
    provider: EhrProvider | None = None
    if document.get("provider") is not None:
        try:
            provider = EhrProvider(document["provider"])
        except ValueError:
            errors.append(FieldError((*root, "provider"), "UNKNOWN_PROVIDER", "is not an EHR"))
    expression = document.get("patientRestriction")
    if expression is not None:
        if not isinstance(expression, str) or len(expression) > 1000:
            errors.append(FieldError((*root, "patientRestriction"), "INVALID", "must be text"))
        else:
            try:
                compile_restriction(expression)
            except RestrictionError as error:
                errors.append(FieldError((*root, "patientRestriction"), error.code, error.message))
    providers_in = document.get("providers")
    if not isinstance(providers_in, dict):
        errors.append(FieldError((*root, "providers"), "REQUIRED", "must be an object"))
        providers_in = {}
    providers = dict(current.providers)
    for name, blocks in providers_in.items():
        path = (*root, "providers", str(name))
        try:
            member = EhrProvider(name)
        except ValueError:
            errors.append(FieldError(path, "UNKNOWN_PROVIDER", "is not an EHR"))
            continue
        read = _read_provider(context, member, blocks, current.provider_settings(member), path)
        if isinstance(read, Failed):
            errors.extend(read.errors)
        else:
            providers[member] = read
    if errors:
        return Failed(tuple(errors))
    return current.model_copy(
        update={
            "provider": provider,
            "patient_restriction": current.patient_restriction.model_copy(
                update={"expression": expression}
            ),
            "providers": providers,
        }
    )


def _read_provider(
    context: Context,
    provider: EhrProvider,
    blocks: Any,
    current: ProviderSettings,
    path: tuple[str, ...],
) -> ProviderSettings | Failed:
    if not isinstance(blocks, dict):
        return Failed.one(path, "INVALID", "must be an object")
    models = PROVIDER_BLOCKS[provider]
    known = {"externalGateway"} | {_alias(block) for block in models if block in _BLOCKS}
    unknown = set(blocks) - known
    if unknown:
        name = sorted(unknown)[0]
        return Failed.one((*path, name), "NOT_APPLICABLE", f"{provider.value} has no such block")
    errors: list[FieldError] = []
    update: dict[str, Any] = {}
    for block, model in models.items():
        if block not in _BLOCKS:
            continue
        data = blocks.get(_alias(block)) or {}
        secrets = _secret_keys(model)
        if not isinstance(data, dict) or _secret_names(model) & set(data):
            errors.append(
                FieldError((*path, _alias(block)), "INVALID", "must be an object without secrets")
            )
            continue
        kept = {k: v for k, v in getattr(current, BLOCK_FIELDS[block]).items() if k in secrets}
        try:
            # By alias only: a document is JSON a person may have edited, and the Python names
            # are no part of its format (a secret named by its Python name slipped past the check
            # above when the models also took those).
            validated = model.model_validate(
                {**data, **kept},
                context={**context.validation_context, IMPORTING: True},
                by_alias=True,
                by_name=False,
            )
        except ValidationError as error:
            errors.extend(field_errors(error, (*path, _alias(block))))
            continue
        update[BLOCK_FIELDS[block]] = stored_form(validated)
    gateway = blocks.get("externalGateway")
    # A document without one (a sandbox that never made one, an export edited down) leaves the
    # target's: removing it would take the id and base path URL Epic calls with it.
    if gateway is not None:
        try:
            connection = ExternalGatewayConnection.model_validate(
                gateway, context=context.validation_context, by_alias=True, by_name=False
            )
        except ValidationError as error:
            errors.extend(field_errors(error, (*path, "externalGateway")))
        else:
            update["external_gateway"] = _gateway(context, connection, current.external_gateway)
    if errors:
        return Failed(tuple(errors))
    return current.model_copy(update=update)


def _gateway(
    context: Context, connection: ExternalGatewayConnection, existing: ExternalGateway | None
) -> ExternalGateway:
    """The connection under the target's own id (a new one when it has none yet)."""
    gateway_id = existing.external_gateway_id if existing else new_gateway_id()
    return ExternalGateway.model_validate(
        {
            **connection.model_dump(),
            "external_gateway_id": gateway_id,
            "base_path_url": existing.base_path_url
            if existing
            else base_path_url(context, gateway_id),
            "created_at": existing.created_at if existing else datetime.now(UTC),
        },
        context=context.validation_context,
    )


@dataclass(frozen=True, slots=True)
class Preview:
    """What an import would change, and the readiness the tenant would have after it (which
    names the secrets the document could not carry and the tenant does not hold)."""

    changes: list[dict[str, Any]]
    settings: TenantSettings
    readiness: Readiness


async def preview_import(context: Context, tenant_id: str, document: Any) -> Preview | Failed:
    """What importing ``document`` would change; stores nothing."""
    refused = check_tenant_id(tenant_id)
    if refused:
        return refused
    current = await get_settings(context, tenant_id) or TenantSettings(tenant_id=tenant_id)
    imported = _read_document(context, document, current)
    if isinstance(imported, Failed):
        return imported
    before, after = settings_tree(current), settings_tree(imported)
    return Preview(
        field_changes(before, after, changed_paths(before, after)),
        imported,
        assess(imported, context.deployment.identifier_defaults),
    )


async def import_settings(
    context: Context, tenant_id: str, document: Any, expected_version: int | None
) -> Outcome:
    """Validate ``document`` fully and store it as one version."""
    return await write(
        context,
        tenant_id,
        expected_version,
        None,
        lambda current: _read_document(context, document, current),
    )
