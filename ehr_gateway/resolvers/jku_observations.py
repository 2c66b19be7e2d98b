"""Finding the JKU without a ticket: the base path URL records which JKU the JWTs Epic sends name
(observe), and an integrator turns one into the tenant's JKU Server URL (adopt), after which
verifyEpicJwt checks those tokens (verify).

Observing trusts nothing: the token's signature is not checked and its ``jku`` is never fetched.
Only ``adopt_observed_jku``, which needs integration:edit, fetches it, through the same outbound
checks and key set rules as a typed-in JKU Server URL, and takes the issuer only from an observed
token that key set verifies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import ValidationError

from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.ehr.epic import EpicSettings
from ehr_gateway.ehr.errors import FieldError, field_errors
from ehr_gateway.ehr.jwks import JwksError, JwtRejected, peek_token, read_header
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.gateway import GATEWAY_ID
from ehr_gateway.resolvers.jku import epic_settings, fetch_keys, store_key_set
from ehr_gateway.resolvers.outcomes import Failed, Outcome
from ehr_gateway.resolvers.settings import get_settings
from ehr_gateway.runtime.jku_observation_log import MISSES
from ehr_gateway.runtime.outbound import OutboundRefused
from ehr_gateway.storage.observations import (
    MAX_OBSERVED_SHOWN,
    MAX_OBSERVED_TOKEN,
    Observation,
    Variant,
)


@dataclass(frozen=True, slots=True)
class Observed:
    """The request was recorded (answered 202)."""

    jku: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The request was not recorded: the HTTP status and a code for its answer."""

    status: int
    code: str
    message: str


async def observe_jku(
    context: Context, gateway_id: str, token: str | None, address: str
) -> Observed | Refused:
    """A request to a tenant's base path URL: record the JKU its JWT names."""
    observations = context.jku_observations
    assert observations is not None
    if not GATEWAY_ID.fullmatch(gateway_id):
        return Refused(404, "not_found", "no such gateway")
    # Refusals that cost no database read come before any bucket is charged.
    if token is None:
        return Refused(
            401, "no_token", "send the Epic JWT as a bearer token (or a JSON body's jwt member)"
        )
    try:
        peeked = peek_token(token)
    except JwtRejected as rejected:
        status = 413 if rejected.code == "TOO_LONG" else 400
        return Refused(status, rejected.code.lower(), rejected.message)
    if len(token) > MAX_OBSERVED_TOKEN:
        return Refused(413, "too_long", f"the token is longer than {MAX_OBSERVED_TOKEN} characters")
    if not observations.addresses.take(f"{address} {gateway_id}"):
        return Refused(429, "rate_limited", "too many requests from this address")
    if not observations.may_look_up(gateway_id):
        return Refused(429, "rate_limited", "too many requests for unknown gateways")
    settings = await context.repository.find_by_gateway_id(gateway_id)
    epic = None if settings is None else settings.providers.get(EhrProvider.EPIC)
    gateway = None if epic is None else epic.external_gateway
    if (
        settings is None
        or settings.provider is not EhrProvider.EPIC  # a tenant that left Epic keeps its ids
        or gateway is None
        or gateway.external_gateway_id != gateway_id
    ):
        observations.misses.take(MISSES)
        observations.gateway_ids.forget(gateway_id)
        return Refused(404, "not_found", "no such gateway")  # the JKU is an Epic setting
    # Created moments ago elsewhere (the feed has not told yet): known from now on.
    observations.gateway_ids.set(settings.tenant_id, settings.version, gateway_id)
    if not observations.tenants.take(settings.tenant_id):
        return Refused(429, "rate_limited", "too many requests for this gateway")
    await observations.record(settings.tenant_id, peeked, token)
    return Observed(peeked.jku)


async def observed_jkus(context: Context, tenant_id: str) -> list[Observation]:
    """The tenant's observations as shown: the first MAX_OBSERVED_SHOWN seen, without their
    tokens. Read once per HTTP request, however many fields (aliases) ask."""
    observations = context.jku_observations
    if observations is None:
        return []
    memo = context.record.observed_jku if context.record is not None else {}
    read = memo.get(tenant_id)
    if read is None:
        read = memo[tenant_id] = asyncio.ensure_future(
            observations.observed(tenant_id, tokens=False)
        )
    return (await read)[:MAX_OBSERVED_SHOWN]


def _signed_by(token: str, keys: KeySet) -> bool:
    """Whether a key of ``keys`` signed ``token`` with an accepted (asymmetric) algorithm. Its
    claims are not checked: an expired token still proves which issuer and key sent it."""
    try:
        header = read_header(token)
        jws.deserialize_compact(token, keys, algorithms=[header.alg])
    except (JwtRejected, JoseError, ValueError, UnicodeError):
        return False
    return True


def verified_variant(seen: Observation, keys: KeySet) -> Variant | None:
    """The first variant of ``seen`` whose token ``keys`` verify: every kept token is tried."""
    return next(
        (v for v in seen.variants if v.token is not None and _signed_by(v.token, keys)), None
    )


async def adopt_observed_jku(
    context: Context, tenant_id: str, url: str, expected_version: int | None
) -> Outcome:
    """Make an observed JKU the tenant's JKU Server URL: only one the tenant's base path URL
    observed, only through the checks a typed-in JKU Server URL meets (its syntax, the outbound
    address rules, a JWK Set of public keys with ids), and only if that key set verifies the
    signature of a token that named it: what adoption takes from the observation (the issuer)
    comes from that token alone, never from an unverified one. Turns the default JKU pattern off
    (the URL is now given) and fills in the JWT Issuer URL from the token's ``iss`` where none
    is set."""
    settings = await get_settings(context, tenant_id)
    epic = epic_settings(settings)
    if isinstance(epic, Failed):
        return epic
    # Every kept URL, with every kept token: not only those shown.
    assert context.jku_observations is not None
    observed = {seen.url: seen for seen in await context.jku_observations.observed(tenant_id)}
    seen = observed.get(url)
    if seen is None:
        return Failed.one(
            ("url",), "NOT_OBSERVED", "no request to the base path URL named this JKU"
        )
    refused = _invalid({"jkuServerUrl": url}, context)
    if refused is not None:
        return refused
    try:
        # No redirect is followed: an open redirect on Epic's host would otherwise get a key
        # set of anyone's adopted under a URL that looks like Epic's.
        keys, key_set = await fetch_keys(context, url, follow_redirects=False)
    except OutboundRefused as refusal:
        return Failed.one(("url",), refusal.code, refusal.message)
    except JwksError as error:
        return Failed.one(("url",), error.code, error.message)
    variant = verified_variant(seen, key_set)
    if variant is None:
        return Failed.one(
            ("url",),
            "UNVERIFIED_OBSERVATION",
            "no observed token that named this JKU is signed by a key of its key set",
        )
    issuer = variant.issuer if epic.jwt_issuer_url is None else None
    if issuer is not None:
        refused = _invalid({"jkuServerUrl": url, "jwtIssuerUrl": issuer}, context)
        if refused is not None:
            return refused

    def adopted(current: EpicSettings) -> dict[str, Any]:
        updates: dict[str, Any] = {
            "jku_server_url": url,
            "enable_default_jku_server_url_pattern": False,
        }
        if issuer is not None and current.jwt_issuer_url is None:
            updates["jwt_issuer_url"] = issuer
        return updates

    return await store_key_set(context, tenant_id, expected_version, url, keys, adopted)


def _invalid(fields: dict[str, Any], context: Context) -> Failed | None:
    """The errors of these Epic settings, on the argument they came from."""
    try:
        EpicSettings.model_validate(fields, context=context.validation_context)
    except ValidationError as error:
        paths = {"jkuServerUrl": "url", "jwtIssuerUrl": "issuer"}
        return Failed(
            tuple(
                FieldError((paths.get(found.path[-1], "url"),), found.code, found.message)
                for found in field_errors(error)
            )
        )
    return None
