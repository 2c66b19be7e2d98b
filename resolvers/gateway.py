"""The external gateway: the EHR connection and the id the gateway generates for it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ehr.blocks import TenantSettings
from ehr.common import ExternalGateway, ExternalGatewayConnection, SettingsBlock
from ehr.errors import field_errors
from resolvers.context import Context
from resolvers.outcomes import Failed, Outcome
from resolvers.settings import require_provider, with_provider_settings
from resolvers.writes import write


def new_gateway_id() -> str:
    """Opaque and URL-safe; 144 random bits, so ids never collide in practice."""
    return secrets.token_urlsafe(18)


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
        refused = require_provider(current)
        if refused or current.provider is None:
            return refused or Failed(())
        existing = current.provider_settings(current.provider).external_gateway
        if existing is not None:
            generated = existing.model_dump(
                include={"external_gateway_id", "base_path_url", "created_at"}
            )
        else:
            gateway_id = new_gateway_id()
            base = context.deployment.public_base_url.rstrip("/")
            generated = {
                "external_gateway_id": gateway_id,
                "base_path_url": f"{base}/gateways/{gateway_id}",
                "created_at": datetime.now(UTC),
            }
        gateway = ExternalGateway.model_validate(
            {**validated.model_dump(), **generated}, context=context.validation_context
        )
        return with_provider_settings(current, current.provider, external_gateway=gateway)

    return await write(
        context, tenant_id, expected_version, [SettingsBlock.EXTERNAL_GATEWAY], change
    )
