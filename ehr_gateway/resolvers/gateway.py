"""The external gateway: the EHR connection and the id the gateway generates for it."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.capability import Capability, read_capability
from ehr_gateway.ehr.common import (
    EhrProvider,
    ExternalGateway,
    ExternalGatewayConnection,
    SettingsBlock,
    fhir_base_url,
)
from ehr_gateway.ehr.errors import field_errors
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.resolvers.settings import active_provider, get_settings, with_provider_settings
from ehr_gateway.resolvers.writes import write
from ehr_gateway.runtime.access import Permission
from ehr_gateway.runtime.outbound import OutboundRefused

# An id as new_gateway_id makes them (URL-safe base64), with room for other lengths. Other text
# names no gateway and is never looked up: it may not even be valid Unicode (JSON can carry a
# lone surrogate).
GATEWAY_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_gateway_id() -> str:
    """Opaque and URL-safe; 144 random bits, so ids never collide in practice."""
    return secrets.token_urlsafe(18)


def base_path_url(context: Context, gateway_id: str) -> str:
    return f"{context.deployment.public_base_url.rstrip('/')}/gateways/{gateway_id}"


async def create_external_gateway(
    context: Context, tenant_id: str, connection: dict[str, Any], expected_version: int | None
) -> Outcome:
    """Store the active provider's EHR connection. The first save generates the external gateway
    id and base path URL; later saves edit the connection and keep the id."""
    try:
        validated = ExternalGatewayConnection.model_validate(
            connection, context=context.validation_context
        )
    except ValidationError as error:
        return Failed(tuple(field_errors(error, ("connection",))))

    def change(current: TenantSettings) -> TenantSettings | Failed:
        provider = active_provider(current)
        if isinstance(provider, Failed):
            return provider
        existing = current.provider_settings(provider).external_gateway
        if existing is not None:
            generated = existing.model_dump(
                include={"external_gateway_id", "base_path_url", "created_at"}
            )
        else:
            gateway_id = new_gateway_id()
            generated = {
                "external_gateway_id": gateway_id,
                "base_path_url": base_path_url(context, gateway_id),
                "created_at": datetime.now(UTC),
            }
        gateway = ExternalGateway.model_validate(
            {**validated.model_dump(), **generated}, context=context.validation_context
        )
        return with_provider_settings(current, provider, external_gateway=gateway)

    return await write(
        context, tenant_id, expected_version, [SettingsBlock.EXTERNAL_GATEWAY], change
    )


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    """The outcome of calling the EHR's FHIR metadata endpoint."""

    url: str | None
    reachable: bool
    capability: Capability | None = None
    failure_code: str | None = None
    failure_message: str | None = None


def _active_gateway(settings: TenantSettings) -> tuple[EhrProvider, ExternalGateway] | Failed:
    """The active EHR and its external gateway, or why there is none."""
    provider = active_provider(settings)
    if isinstance(provider, Failed):
        return provider
    gateway = settings.provider_settings(provider).external_gateway
    if gateway is None:
        return Failed.one(
            ("externalGateway",), "NOT_CONFIGURED", "save the external gateway connection first"
        )
    return provider, gateway


def _metadata_url(settings: TenantSettings, base_url: str) -> str:
    assert settings.provider is not None
    fhir = settings.block(settings.provider, SettingsBlock.FHIR)
    return fhir_base_url(base_url, getattr(fhir, "url_prefix", None)) + "/metadata"


async def check_connection(context: Context, tenant_id: str) -> ConnectionTest | Failed:
    """Fetch the EHR's FHIR metadata (base URL + the FHIR url prefix) and say what answered."""
    settings = await get_settings(context, tenant_id)
    if settings is None:
        return Failed.one(("tenantId",), "NOT_FOUND", "no settings exist for this tenant")
    active = _active_gateway(settings)
    if isinstance(active, Failed):
        return active
    _, gateway = active
    assert context.outbound is not None
    url = _metadata_url(settings, gateway.base_url)
    try:
        capability = read_capability(await context.outbound.get_json(url))
    except OutboundRefused as refusal:
        return ConnectionTest(url, refusal.answered, None, refusal.code, refusal.message)
    except ValueError as error:
        return ConnectionTest(url, True, None, "NOT_FHIR", str(error))
    return ConnectionTest(url, True, capability)


async def regenerate_external_gateway_id(
    context: Context, tenant_id: str, expected_version: int | None
) -> Outcome:
    """Give the active provider's external gateway a new id and base path URL; the old id stops
    resolving."""

    def change(current: TenantSettings) -> TenantSettings | Failed:
        active = _active_gateway(current)
        if isinstance(active, Failed):
            return active
        provider, existing = active
        gateway_id = new_gateway_id()
        # Only the id changes: the connection is kept as stored, even one a newer rule refuses.
        rotated = existing.model_copy(
            update={
                "external_gateway_id": gateway_id,
                "base_path_url": base_path_url(context, gateway_id),
            }
        )
        return with_provider_settings(current, provider, external_gateway=rotated)

    return await write(
        context, tenant_id, expected_version, [SettingsBlock.EXTERNAL_GATEWAY], change
    )


async def resolve_external_gateway(
    context: Context, gateway_id: str
) -> tuple[str, EhrProvider] | None:
    """Which tenant and provider an external gateway id belongs to (None once it is rotated)."""
    if not GATEWAY_ID.fullmatch(gateway_id):
        return None
    settings = await context.repository.find_by_gateway_id(gateway_id)
    if settings is None or not context.allows(Permission.READ, settings.tenant_id):
        return None  # another tenant's id is as unknown to this caller as a made-up one
    for provider, blocks in settings.providers.items():
        gateway = blocks.external_gateway
        if gateway is not None and gateway.external_gateway_id == gateway_id:
            return settings.tenant_id, provider
    return None
