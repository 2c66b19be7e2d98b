"""The JKU: discovering and checking the key set Epic signs its JWTs with, and verifying those
JWTs for runtime services."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import KeySet
from pydantic import ValidationError

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.ehr.common import EhrProvider, JkuKey, JkuSnapshot, SettingsBlock
from ehr_gateway.ehr.epic import EpicSettings
from ehr_gateway.ehr.errors import FieldError, field_errors
from ehr_gateway.ehr.jwks import (
    MAX_OBSERVED_URL,
    JwksError,
    JwtRejected,
    PublicKey,
    check_plain_jwt,
    conventional_jwks_url,
    discovery_url,
    jwks_url_from_discovery,
    read_header,
    read_jwks,
    verify_jwt,
)
from ehr_gateway.ehr.readiness import stale_key_set
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.resolvers.settings import get_settings, with_provider_settings
from ehr_gateway.resolvers.writes import write
from ehr_gateway.runtime.outbound import OutboundRefused


async def fetch_keys(
    context: Context, url: str, *, follow_redirects: bool = True
) -> tuple[list[PublicKey], KeySet]:
    assert context.outbound is not None
    keys = read_jwks(await context.outbound.get_json(url, follow_redirects=follow_redirects))
    context.key_cache.put(url, keys[1])
    return keys


async def _jwks_url(context: Context, issuer: str) -> str:
    """The issuer's key set URL: OpenID discovery's jwks_uri, else the conventional path."""
    assert context.outbound is not None
    try:
        found = jwks_url_from_discovery(await context.outbound.get_json(discovery_url(issuer)))
    except OutboundRefused as refusal:
        if refusal.code not in {"HTTP_STATUS", "NOT_JSON"}:
            raise
        found = None
    return found or conventional_jwks_url(issuer)


def epic_settings(settings: TenantSettings | None) -> EpicSettings | Failed:
    if settings is None:
        return Failed.one(("tenantId",), "NOT_FOUND", "no settings exist for this tenant")
    if settings.provider is not EhrProvider.EPIC:
        return Failed.one(("provider",), "NOT_EPIC", "the JKU is an Epic setting")
    epic = settings.block(EhrProvider.EPIC, SettingsBlock.EHR)
    assert isinstance(epic, EpicSettings)
    return epic


async def discover_jku(
    context: Context, tenant_id: str, issuer_url: str | None, expected_version: int | None
) -> Outcome:
    """Find and check the tenant's JKU, then store its URL and a summary of its keys.

    With "Enable Default JKU Server URL Pattern" on, the URL is derived from the issuer (OpenID
    discovery, else /.well-known/jwks.json); otherwise the configured JKU Server URL is checked.
    """
    settings = await get_settings(context, tenant_id)
    epic = epic_settings(settings)
    if isinstance(epic, Failed):
        return epic
    try:
        if epic.enable_default_jku_server_url_pattern:
            issuer = issuer_url or epic.jwt_issuer_url
            if issuer is None:
                return Failed.one(
                    ("issuerUrl",), "REQUIRED", "give the issuer URL (or set the JWT Issuer URL)"
                )
            try:
                EpicSettings.model_validate(
                    {"jwtIssuerUrl": issuer}, context=context.validation_context
                )
            except ValidationError as error:  # its code: INVALID_URL, AMBIGUOUS_HOST...
                return Failed(
                    tuple(
                        FieldError(("issuerUrl",), found.code, found.message)
                        for found in field_errors(error)
                    )
                )
            try:
                url = await _jwks_url(context, issuer)
            except OutboundRefused as refusal:  # the issuer's own URL: the field it came from
                return Failed.one(("issuerUrl",), refusal.code, refusal.message)
        elif epic.jku_server_url is not None:
            issuer, url = issuer_url or epic.jwt_issuer_url, epic.jku_server_url
        else:
            return Failed.one(
                ("jkuServerUrl",),
                "NOT_CONFIGURED",
                "set the JKU Server URL, or turn on the default JKU Server URL pattern",
            )
        keys, _ = await fetch_keys(context, url)
    except OutboundRefused as refusal:
        return Failed.one(("jkuServerUrl",), refusal.code, refusal.message)
    except JwksError as error:
        return Failed.one(("jkuServerUrl",), error.code, error.message)
    except ValueError:
        return Failed.one(("issuerUrl",), "INVALID_URL", "must be an absolute https:// URL")
    updates: dict[str, Any] = {"jku_server_url": url}
    if issuer is not None:
        updates["jwt_issuer_url"] = issuer
    derived_from = issuer if epic.enable_default_jku_server_url_pattern else None
    return await store_key_set(
        context, tenant_id, expected_version, url, keys, lambda _: updates, derived_from
    )


async def store_key_set(
    context: Context,
    tenant_id: str,
    expected_version: int | None,
    url: str,
    keys: Sequence[PublicKey],
    updates: Callable[[EpicSettings], dict[str, Any]],
    derived_from: str | None = None,
) -> Outcome:
    """Record the key set fetched from ``url`` (each key's id and thumbprint) as the one
    verifyEpicJwt takes keys from, with the Epic settings ``updates`` gives for the settings
    current when the write runs; ``derived_from`` is the issuer the default JKU Server URL
    pattern derived ``url`` from."""
    snapshot = JkuSnapshot(
        url=url,
        keys=[JkuKey(kid=k.kid, kty=k.kty, alg=k.alg, thumbprint=k.thumbprint) for k in keys],
        fetched_at=datetime.now(UTC),
        issuer_url=derived_from,
    )

    def change(current: TenantSettings) -> TenantSettings | Failed:
        current_epic = epic_settings(current)
        if isinstance(current_epic, Failed):
            return current_epic
        ehr = current_epic.model_copy(update=updates(current_epic))
        stored = ehr.model_dump(mode="json", by_alias=True, exclude_defaults=True,
                                exclude_computed_fields=True)  # fmt: skip
        return with_provider_settings(current, EhrProvider.EPIC, ehr=stored, jku=snapshot)

    return await write(context, tenant_id, expected_version, [SettingsBlock.EHR], change)


@dataclass(frozen=True, slots=True)
class VerifiedJwt:
    claims: dict[str, Any]
    kid: str | None
    alg: str


async def verify_epic_jwt(
    context: Context, tenant_id: str, token: str
) -> VerifiedJwt | JwtRejected:
    """Check a JWT Epic sent: its kind (a plain JWT), its algorithm, its key (only from the key
    set URL that discoverJku or refreshJku recorded, never from the raw JKU Server URL setting
    or the token), signature, issuer, audience and validity period. Returns the claims or why
    they are refused."""
    if len(token) > 16_384:
        return JwtRejected("TOO_LONG", "the token is longer than 16384 characters")
    settings = await get_settings(context, tenant_id)
    epic = epic_settings(settings)
    if isinstance(epic, Failed):
        error = epic.errors[0]
        return JwtRejected(error.code, error.message)
    assert settings is not None
    recorded = settings.provider_settings(EhrProvider.EPIC).jku
    if recorded is None or epic.jwt_issuer_url is None:
        return JwtRejected(
            "NOT_CONFIGURED",
            "the tenant's JKU has not been discovered yet (discoverJku), or it has no JWT "
            "Issuer URL",
        )
    stale = stale_key_set(recorded, epic)
    if stale is not None:
        # Never the keys of a key set the settings have moved away from.
        return JwtRejected(
            "NOT_CONFIGURED", f"the key set that discovery recorded is not used: {stale}"
        )
    audiences = _audiences(settings, epic)
    if not audiences:
        return JwtRejected(
            "NOT_CONFIGURED", "set the JWT Audience, or save the external gateway connection"
        )
    try:
        header = read_header(token)
        check_plain_jwt(header)
        if header.jku is not None and header.jku != recorded.url:
            # Never fetch a key set the token names: anyone can host one.
            # Named back, so an integrator sees which key set the sender uses (adoptObservedJku
            # is how it becomes the recorded one).
            shown = len(header.jku) <= MAX_OBSERVED_URL and header.jku.isprintable()
            named = header.jku if shown else None
            raise JwtRejected(
                "JKU_MISMATCH",
                f"the token names the JKU {named or '(too long to show)'}, not the recorded "
                f"one ({recorded.url})",
                token_jku=named,
            )
        keys = await _keys(context, tenant_id, recorded.url, header.kid)
        if header.kid is not None and not _has_kid(keys, header.kid):
            raise JwtRejected("UNKNOWN_KID", "no key of the JKU has the token's kid")
        claims = verify_jwt(
            token, header, keys, epic.jwt_issuer_url, audiences,
            leeway_s=context.deployment.clock_skew_s,
        )  # fmt: skip
    except JwtRejected as rejected:
        return rejected
    except OutboundRefused as refusal:
        return JwtRejected("JKU_UNAVAILABLE", f"{refusal.code}: {refusal.message}")
    except JwksError as error:
        return JwtRejected("JKU_INVALID", f"{error.code}: {error.message}")
    return VerifiedJwt(claims, header.kid, header.alg)


def _audiences(settings: TenantSettings, epic: EpicSettings) -> list[str]:
    """The ``aud`` values a tenant's Epic JWTs may carry: the configured JWT Audience, else the
    base path URL of the external gateway, which is the URL Epic calls."""
    if epic.jwt_audience is not None:
        return [epic.jwt_audience]
    gateway = settings.provider_settings(EhrProvider.EPIC).external_gateway
    return [gateway.base_path_url] if gateway is not None else []


async def _keys(context: Context, tenant_id: str, url: str, kid: str | None) -> KeySet:
    """The key set at ``url``: cached; fetched when it is not, or again when it lacks ``kid``,
    at most once per tenant per REFETCH_INTERVAL_S."""
    cache = context.key_cache
    keys = cache.get(url)
    if keys is None:
        async with cache.fetching(url):
            keys = cache.get(url)  # fetched by a caller this one waited for
            if keys is None:
                _, keys = await fetch_keys(context, url)
    elif kid is not None and not _has_kid(keys, kid) and cache.may_refetch(tenant_id):
        _, keys = await fetch_keys(context, url)
    return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys)
