"""Epic OAuth: the client's signing keys, the JWKS the gateway publishes for them, and a test of
the token exchange."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import RSAKey

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.epic import EpicOAuthSettings
from ehr_gateway.ehr.oauth import (
    SigningKey,
    TokenOutcome,
    client_assertion,
    new_key,
    public_jwk,
    read_token_response,
)
from ehr_gateway.ehr.secret import signing_key_binding
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.resolvers.settings import get_settings, with_provider_settings
from ehr_gateway.resolvers.tenants import check_tenant_id
from ehr_gateway.resolvers.writes import write
from ehr_gateway.runtime.outbound import OutboundRefused

KEYS_KEPT = 2  # the current key and the one before it, so a rotation never breaks a client


def jwks_url(context: Context, tenant_id: str) -> str:
    base = context.deployment.public_base_url.rstrip("/")
    return f"{base}/tenants/{tenant_id}/.well-known/jwks.json"


def _epic_only(settings: TenantSettings | None) -> Failed | None:
    if settings is None:
        return Failed.one(("tenantId",), "NOT_FOUND", "no settings exist for this tenant")
    if settings.provider is not EhrProvider.EPIC:
        return Failed.one(("provider",), "NOT_EPIC", "OAuth signing keys are an Epic setting")
    return None


async def generate_signing_key(
    context: Context, tenant_id: str, expected_version: int | None
) -> Outcome:
    """Create a new RS384 key pair for the tenant's Epic OAuth client. The private key is stored
    only encrypted; the public key is published at the tenant's JWKS URL next to the previous
    one, which stays until the following rotation."""
    refused = check_tenant_id(tenant_id)
    if refused:  # before the key is sealed to the tenant id, which must be valid Unicode
        return refused
    key = new_key()
    sealed = context.secrets.seal(
        json.dumps(key.as_dict(private=True)), signing_key_binding(tenant_id, "EPIC", str(key.kid))
    )
    stored = SigningKey(
        kid=str(key.kid), public_jwk=public_jwk(key), private_jwk=sealed,
        created_at=datetime.now(UTC),
    )  # fmt: skip

    def change(current: TenantSettings) -> TenantSettings | Failed:
        refused = _epic_only(current if current.version else None)
        if refused:
            return refused
        kept = current.provider_settings(EhrProvider.EPIC).signing_keys[: KEYS_KEPT - 1]
        return with_provider_settings(current, EhrProvider.EPIC, signing_keys=[stored, *kept])

    return await write(context, tenant_id, expected_version, [SettingsBlock.OAUTH], change)


async def published_jwks(context: Context, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's public signing keys as a JWK Set; None if it has none."""
    settings = await get_settings(context, tenant_id)
    if settings is None or EhrProvider.EPIC not in settings.providers:
        return None
    keys = settings.providers[EhrProvider.EPIC].signing_keys
    return {"keys": [key.public_jwk for key in keys]} if keys else None


async def exchange_token(context: Context, tenant_id: str) -> TokenOutcome | Failed:
    """Sign a client assertion with the current key and ask Epic's token endpoint for a token
    (client_credentials). Reports the outcome; the token is never returned or kept."""
    settings = await get_settings(context, tenant_id)
    refused = _epic_only(settings)
    if refused:
        return refused
    assert settings is not None
    oauth = settings.block(EhrProvider.EPIC, SettingsBlock.OAUTH)
    assert isinstance(oauth, EpicOAuthSettings)
    if oauth.epic_client_id is None or oauth.oauth_token_url is None:
        return Failed.one(
            ("oauth",), "NOT_CONFIGURED", "set the Epic Client ID and the OAuth Token URL first"
        )
    keys = settings.providers[EhrProvider.EPIC].signing_keys
    if not keys:
        return Failed.one(("signingKeys",), "NO_SIGNING_KEY", "generate a signing key first")
    current = keys[0]
    private = RSAKey.import_key(
        json.loads(
            context.secrets.open(
                current.private_jwk, signing_key_binding(tenant_id, "EPIC", current.kid)
            )
        )
    )
    assertion = client_assertion(private, oauth.epic_client_id, oauth.oauth_token_url)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert context.outbound is not None
    try:
        status, body = await context.outbound.post_form(oauth.oauth_token_url, form)
    except OutboundRefused as refusal:
        return TokenOutcome(
            ok=False, status=0, error=refusal.code, error_description=refusal.message
        )
    return read_token_response(status, body)
