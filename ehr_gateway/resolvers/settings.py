"""Reading and writing a tenant's settings, block by block."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from ehr_gateway.ehr.blocks import (
    BLOCK_FIELDS,
    PROVIDER_BLOCKS,
    ProviderSettings,
    TenantSettings,
    apply_patch,
    stored_form,
)
from ehr_gateway.ehr.common import EhrProvider, PatientRestriction, SettingsBlock
from ehr_gateway.ehr.errors import FieldError, field_errors
from ehr_gateway.ehr.fields import guarded_by, has_control_character, is_header_value
from ehr_gateway.ehr.identifiers import IdentifierDefaults, with_identifier_defaults
from ehr_gateway.ehr.readiness import Readiness, assess
from ehr_gateway.ehr.restriction import RestrictionError, compile_restriction
from ehr_gateway.ehr.secret import (
    SENT_FIELDS,
    StoredSecret,
    has_padding,
    is_issued_key,
    is_sent_as_header,
)
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.resolvers.writes import write
from ehr_gateway.runtime.access import Forbidden, Permission

SECRET_MAX = 1024


async def get_settings(context: Context, tenant_id: str) -> TenantSettings | None:
    """The tenant's current settings (through the settings cache), noted in the request's
    record for the response cache."""
    if check_tenant_id(tenant_id):
        return None
    settings = await context.settings_cache.read(
        tenant_id, context.repository.get, context.repository.committed_settings
    )
    if context.record is not None:
        context.record.read(tenant_id, settings)
    return settings


def effective_block(
    context: Context, settings: TenantSettings, block: SettingsBlock
) -> BaseModel | None:
    """The active provider's block as it takes effect (deployment defaults filled in)."""
    provider = settings.provider
    if provider is None:
        return None
    defaults = context.deployment.identifier_defaults
    # Keyed by the stored data itself, as the validated block is (TenantSettings.block): one
    # lookup per read instead of one for the block and another for its effective form.
    raw = getattr(settings.provider_settings(provider), BLOCK_FIELDS[block])
    return settings.derived(
        ("effective", provider, block),
        (raw, defaults),
        lambda: _with_defaults(settings.block(provider, block), defaults),
    )


def _with_defaults(model: BaseModel | None, defaults: IdentifierDefaults) -> BaseModel | None:
    return None if model is None else with_identifier_defaults(model, defaults)


def with_provider_settings(
    settings: TenantSettings, provider: EhrProvider, **blocks: Any
) -> TenantSettings:
    current = settings.provider_settings(provider)
    providers = dict(settings.providers)
    providers[provider] = current.model_copy(update=blocks)
    return settings.model_copy(update={"providers": providers})


async def select_provider(
    context: Context, tenant_id: str, provider: EhrProvider, expected_version: int | None
) -> Outcome:
    def change(current: TenantSettings) -> TenantSettings:
        providers = dict(current.providers)
        providers.setdefault(provider, ProviderSettings())
        return current.model_copy(update={"provider": provider, "providers": providers})

    return await write(context, tenant_id, expected_version, [SettingsBlock.PROVIDER], change)


def active_provider(current: TenantSettings) -> EhrProvider | Failed:
    """The tenant's selected EHR, or the refusal to give when there is none."""
    if current.provider is None:
        return Failed.one(
            ("provider",), "PROVIDER_NOT_SELECTED", "select the tenant's EHR provider first"
        )
    return current.provider


def _active_provider(
    current: TenantSettings, member: EhrProvider, member_path: tuple[str, ...]
) -> Failed | None:
    active = active_provider(current)
    if isinstance(active, Failed):
        return active
    if member is not active:
        return Failed.one(
            member_path,
            "WRONG_PROVIDER",
            f"the tenant's EHR is {active.value}; send the {active.value.lower()} member",
        )
    return None


def _secret_refusal(
    context: Context,
    tenant_id: str,
    member: EhrProvider,
    block: SettingsBlock,
    patch: dict[str, Any],
) -> Forbidden | None:
    """Why the caller may not send the secrets in ``patch``. A secret's permission is needed
    to send one at all, even the value it already has: were only a change refused, the answer
    would tell a caller without the permission whether a guess equals the stored secret."""
    for key, permission, path in _guarded_secrets(member, block):
        if key in patch and not context.allows(permission, tenant_id):
            return Forbidden(permission, tenant_id, [path])
    return None


@cache
def _guarded_secrets(
    member: EhrProvider, block: SettingsBlock
) -> tuple[tuple[str, Permission, str], ...]:
    """The secrets of a block that a permission guards: each one's key, that permission and
    its path (the models do not change, and every write asked them again)."""
    model = PROVIDER_BLOCKS[member].get(block)
    part = ProviderSettings.model_fields[BLOCK_FIELDS[block]].alias or BLOCK_FIELDS[block]
    found = []
    for name, field in model.model_fields.items() if model else ():
        key = field.alias or name
        needed = guarded_by(field)
        if field.annotation is StoredSecret and needed:
            found.append((key, Permission(needed), f"providers.{member.value}.{part}.{key}"))
    return tuple(found)


def _seal_secrets(
    context: Context,
    current: BaseModel,
    patch: dict[str, Any],
    scope: str,
    path: tuple[str, ...],
) -> dict[str, Any] | Failed:
    """Replace plaintext secrets in ``patch`` by their stored (encrypted) form. Sending the
    value a secret already has changes nothing."""
    sealed = dict(patch)
    for name, field in type(current).model_fields.items():
        key = field.alias or name
        if field.annotation is not StoredSecret or sealed.get(key) is None:
            continue
        plaintext = str(sealed[key])
        if not 1 <= len(plaintext) <= SECRET_MAX:
            code = "TOO_SHORT" if not plaintext else "TOO_LONG"
            return Failed.one((*path, key), code, f"must be 1 to {SECRET_MAX} characters long")
        try:
            plaintext.encode()
        except UnicodeEncodeError:
            return Failed.one((*path, key), "INVALID_TEXT", "must be valid Unicode text")
        if has_control_character(plaintext):
            return Failed.one(
                (*path, key),
                "CONTROL_CHARACTER",
                "must not contain control characters such as NUL or line breaks",
            )
        if is_issued_key(field) and has_padding(plaintext):
            # The code says white space, as it did before invisible characters were refused
            # with it: clients match on it, and both are what a paste adds around a key.
            return Failed.one(
                (*path, key),
                "SURROUNDING_WHITESPACE",
                f"{key} must not start or end with white space or an invisible character such "
                "as a zero-width space or a byte order mark (a paste often adds them): the key "
                "as issued has none, and one kept with it would be another key, refused at every "
                "call",
            )
        if is_sent_as_header(field) and not is_header_value(plaintext):
            return Failed.one(
                (*path, key),
                "INVALID_HEADER_VALUE",
                "must be printable ASCII (spaces and tabs inside only): it is sent as a header's "
                "value, which can hold no other text",
            )
        stored: StoredSecret = getattr(current, name)
        binding = f"{scope}:{key}"
        if context.secrets.holds(stored, plaintext, binding):
            del sealed[key]
            continue
        secret = context.secrets.seal(plaintext, binding)
        sealed[key] = secret.model_dump(mode="json", by_alias=True, exclude_computed_fields=True)
    return sealed


async def update_block(
    context: Context,
    tenant_id: str,
    block: SettingsBlock,
    member: EhrProvider,
    patch: dict[str, Any],
    expected_version: int | None,
) -> Outcome:
    """Apply a partial update to one block of the active provider. ``member`` is the provider
    whose input member the client sent; ``patch`` maps camelCase fields to values (None clears
    a field back to its default; absent fields keep their value)."""
    member_path = ("input", member.value.lower())
    refused = _secret_refusal(context, tenant_id, member, block, patch)
    if refused is not None:
        raise refused

    def change(current: TenantSettings) -> TenantSettings | Failed:
        refused = _active_provider(current, member, member_path)
        if refused:
            return refused
        model = current.block(member, block)
        if model is None:
            return Failed.one(
                member_path,
                "NOT_APPLICABLE",
                f"{member.value} has no {block.value} settings",
            )
        sealed = _seal_secrets(
            context, model, patch, f"{tenant_id}:{member.value}:{block.value}", member_path
        )
        if isinstance(sealed, Failed):
            return sealed
        try:
            updated = apply_patch(
                model, sealed, {**context.validation_context, SENT_FIELDS: frozenset(patch)}
            )
        except ValidationError as error:
            return Failed(tuple(field_errors(error, member_path, sent=patch.keys())))
        return with_provider_settings(
            current, member, **{BLOCK_FIELDS[block]: stored_form(updated)}
        )

    return await write(context, tenant_id, expected_version, [block], change)


async def update_patient_restriction(
    context: Context, tenant_id: str, expression: str | None, expected_version: int | None
) -> Outcome:
    """Set (or, with None, clear) the patient restriction expression. It is compiled and checked
    first; an invalid expression is refused with the parser's message and nothing is stored."""
    if expression is not None:
        try:
            PatientRestriction(expression=expression)
        except ValidationError as error:
            return Failed(tuple(field_errors(error)))
        try:
            compile_restriction(expression)
        except RestrictionError as error:
            return Failed((FieldError(("expression",), error.code, error.message),))

    def change(current: TenantSettings) -> TenantSettings:
        restriction = PatientRestriction(expression=expression)
        return current.model_copy(update={"patient_restriction": restriction})

    return await write(
        context, tenant_id, expected_version, [SettingsBlock.PATIENT_RESTRICTION], change
    )


async def evaluate_patient_restriction(
    context: Context, tenant_id: str, age: int
) -> tuple[bool, str | None] | Failed:
    """Whether a patient of ``age`` is restricted for the tenant, and the expression that says
    so. A tenant without an expression restricts nobody."""
    refused = check_tenant_id(tenant_id)
    if refused:
        return refused
    if not 0 <= age <= 200:
        return Failed.one(("age",), "OUT_OF_RANGE", "must be between 0 and 200")
    settings = await context.repository.get(tenant_id)
    if settings is None:
        return Failed.one(("tenantId",), "NOT_FOUND", "no settings exist for this tenant")
    expression = settings.patient_restriction.expression
    if expression is None:
        return False, None
    try:
        return compile_restriction(expression).is_restricted(age=age), expression
    except RestrictionError as error:
        return Failed((FieldError(("expression",), error.code, error.message),))


async def readiness(context: Context, tenant_id: str) -> tuple[TenantSettings | None, Readiness]:
    """The tenant's settings and their readiness, from one read."""
    settings = await get_settings(context, tenant_id)
    return settings, assess(settings, context.deployment.identifier_defaults)
