"""Epic's OAuth and JKU: checking the JWTs Epic sends, discovering the key set they are checked
against, the tenant's signing key and a test of the token exchange."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.extensions import (
    FieldExtension,
)
from strawberry.scalars import JSON

from ehr_gateway.ehr.jwks import JwtRejected as DomainJwtRejected
from ehr_gateway.gql.arguments import ContextInfo, TenantArg, VersionArg
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.idempotency import Idempotent
from ehr_gateway.gql.jku_types import JwtRejected, JwtVerification, JwtVerified
from ehr_gateway.gql.oauth_types import OAuthTokenTest, OAuthTokenTestResult
from ehr_gateway.gql.results import SettingsResult, ValidationFailed, settings_result
from ehr_gateway.resolvers import jku, jku_observations, oauth
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.runtime.access import Permission


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.VERIFY_JWT),
        description="Check a JWT that Epic sent (pause and resume, click to call): its kind "
        "(`typ` JWT or none; other kinds such as at+jwt are refused), its algorithm (asymmetric "
        "only), its key (only from the key set URL that discoverJku or refreshJku recorded, and "
        "only while the settings still name it: after the JKU Server URL, or with the default "
        "pattern on the JWT Issuer URL, changed, every token is NOT_CONFIGURED until refreshJku; "
        "a `jku` header naming another URL is refused with JKU_MISMATCH and named in tokenJku, "
        "never fetched), signature, issuer (the JWT "
        "Issuer URL), audience (`aud`: the JWT Audience, else the external gateway's base path "
        "URL, or a URL under it) and validity period (with the deployment's clock-skew leeway, "
        "60 s by default). Keys are cached for 5 minutes; a token with an unknown kid fetches "
        "them again at most once per tenant every 30 seconds.",
    )
    async def verify_epic_jwt(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        token: Annotated[str, strawberry.argument(description="The JWT, as Epic sent it.")],
    ) -> JwtVerification:
        outcome = await jku.verify_epic_jwt(info.context, tenant_id, token)
        if isinstance(outcome, DomainJwtRejected):
            return JwtRejected(
                code=outcome.code, message=outcome.message, token_jku=outcome.token_jku
            )
        return JwtVerified(claims=cast(JSON, outcome.claims), kid=outcome.kid, alg=outcome.alg)


# Discovery records the JKU and the EHR block's JKU and issuer settings, each guarded by the
# integration:edit it needs anyway; never a credential (the SOAP pair, Ellkay's keys), so the
# EHR block's other guarded settings are not listed as its.
def _discovery() -> list[FieldExtension]:
    return needs(Permission.INTEGRATE, parts=("jku",))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=[*_discovery(), Idempotent()],
        description="Find and check the tenant's JKU (Epic), then store its URL and its keys' "
        "ids and thumbprints. With Enable Default JKU Server URL Pattern on, the URL comes from "
        "the issuer: OpenID discovery's jwks_uri, else /.well-known/jwks.json. Otherwise the "
        "configured JKU Server URL is checked. A key set with private or symmetric keys, no keys, "
        "or keys without a kid is refused.",
    )
    async def discover_jku(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        issuer_url: Annotated[
            str | None,
            strawberry.argument(description="The issuer; default: the JWT Issuer URL."),
        ] = None,
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await jku.discover_jku(info.context, tenant_id, issuer_url, expected_version)
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*_discovery(), Idempotent()],
        description="Make a JKU that the base path URL observed (IntegrationSettings.observedJku) "
        "the tenant's JKU Server URL: it is checked as a typed-in one is (a web URL the gateway "
        "may call, serving a JWK Set of public keys with ids, itself: a redirect is refused with "
        "REDIRECT_REFUSED) and must verify the signature of "
        "a token the base path URL received naming it (UNVERIFIED_OBSERVATION otherwise); its "
        "keys are then recorded as discoverJku does. Turns Enable Default JKU Server URL Pattern "
        "off, and sets the JWT Issuer URL from that verified token's iss where none is set. A "
        "URL no request named is refused with NOT_OBSERVED.",
    )
    async def adopt_observed_jku(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        url: Annotated[str, strawberry.argument(description="The observed JKU's url.")],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await jku_observations.adopt_observed_jku(
            info.context, tenant_id, url, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*_discovery(), Idempotent()],
        description="Fetch the tenant's JKU again and store its current keys.",
    )
    async def refresh_jku(
        self, info: ContextInfo, tenant_id: TenantArg, expected_version: VersionArg = None
    ) -> SettingsResult:
        outcome = await jku.discover_jku(info.context, tenant_id, None, expected_version)
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE, parts=("signing_keys",)), Idempotent()],
        description="Generate a new RS384 signing key for the tenant's Epic OAuth client. The "
        "private key is stored only encrypted; the public key is published at oauthJwksUrl "
        "(register that URL with Epic), next to the previous key until the following rotation.",
    )
    async def generate_o_auth_signing_key(
        self, info: ContextInfo, tenant_id: TenantArg, expected_version: VersionArg = None
    ) -> SettingsResult:
        outcome = await oauth.generate_signing_key(info.context, tenant_id, expected_version)
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE), Idempotent(stores=False)],
        description="Test Epic's token exchange: sign a private_key_jwt client assertion (RS384, "
        "kid and typ JWT in the header; iss = sub = the client id, aud = the token URL, a unique "
        "jti, expiring in 5 minutes) and request a client_credentials token. Reports the outcome, "
        "never the token.",
    )
    async def test_o_auth_token(
        self, info: ContextInfo, tenant_id: TenantArg
    ) -> OAuthTokenTestResult:
        outcome = await oauth.exchange_token(info.context, tenant_id)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        return OAuthTokenTest.of(outcome)
