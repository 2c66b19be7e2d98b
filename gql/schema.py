"""The schema: queries and mutations, thin over the resolvers."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import strawberry
from graphql import ASTValidationRule, GraphQLError
from graphql.execution import Executor
from pymongo.errors import PyMongoError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    FieldExtension,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.scalars import JSON
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StrawberryGraphQLCoreExecutionContext,
    StreamResult,
)
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.graphql import OperationType

from ehr.blocks import block_models
from ehr.jwks import JwtRejected as DomainJwtRejected
from gql.arguments import TenantArg
from gql.audit_types import (
    AuditEntry,
    AuditIntegrity,
    AuditLogPage,
    FieldChange,
    ImportPreview,
    ImportResult,
    SettingsDiff,
    SettingsDiffResult,
)
from gql.authorization import needs
from gql.documents import DocumentCache, ParseByText
from gql.enums import EhrProvider, SettingsBlock
from gql.errors import request_error_message
from gql.gateway_types import (
    ConnectionTestResult,
    ExternalGatewayOwner,
    GatewayConnectionTest,
)
from gql.history_types import SettingsHistoryPage, SettingsVersion
from gql.idempotency import Idempotent
from gql.inputs import (
    EhrSettingsInput,
    ExternalGatewayConnectionInput,
    FhirSettingsInput,
    HeaderSettingsInput,
    OAuthSettingsInput,
    chosen_member,
    plain,
)
from gql.jku_types import JwtRejected, JwtVerification, JwtVerified
from gql.list_budget import MAX_ENTRIES, ListBudget, charge
from gql.multiplex import Multiplexer
from gql.oauth_types import OAuthTokenTest, OAuthTokenTestResult
from gql.persisted_documents import (
    PersistedDocuments,
    PersistedDocumentsExtension,
    PersistedDocumentsSetup,
)
from gql.readiness_types import Readiness
from gql.response_cache import RecordExecution
from gql.results import SettingsResult, ValidationFailed, settings_result
from gql.scalars import SCALAR_OVERRIDES
from gql.selection_limits import DEFAULT_MAX_REPEATS, DEFAULT_MAX_SELECTIONS, SelectionLimits
from gql.settings_types import IntegrationSettings, SettingsSnapshot
from gql.subscription import Subscription
from gql.validation_cache import ValidationByText
from resolvers import (
    audit,
    gateway,
    history,
    jku,
    jku_observations,
    oauth,
    promotion,
    settings,
)
from resolvers.access import Permission
from resolvers.context import Context
from resolvers.outcomes import Failed, Outcome
from storage.client import (
    database_deadline,
    error_summary,
    is_storage_full,
    is_unavailable,
    reason,
)
from storage.health import DatabaseHealth
from storage.repair import HistoryTampered, StorageFull

logger = logging.getLogger("ehr_gateway.graphql")
ContextInfo = Info[Context, None]
STORAGE_FULL_MESSAGE = (
    "the database has no space left: a write this operation needed was refused. An operator "
    "must free space on the database's disk; until then writes are refused, and retrying will "
    "not help"
)

EXPECTED_VERSION = (
    "The version the client last read. If the settings have changed since, nothing is stored "
    "and the result is VersionConflict. Omit it to write over whatever version is current."
)


@strawberry.type(description="The outcome of evaluating a tenant's patient restriction.")
class RestrictionEvaluated:
    restricted: bool = strawberry.field(
        description="Whether the patient's information is restricted (false when the tenant has "
        "no expression)."
    )
    expression: str | None = strawberry.field(description="The expression that was evaluated.")


RestrictionResult = Annotated[
    RestrictionEvaluated | ValidationFailed,
    strawberry.union(
        "RestrictionResult",
        description="The evaluation, or why it could not run (e.g. an age out of range).",
    ),
]


@strawberry.type(description="Reads: settings, readiness, history, audit, verification.")
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ),
        description="A tenant's integration settings; null if it has none yet.",
    )
    async def integration_settings(
        self, info: ContextInfo, tenant_id: TenantArg
    ) -> IntegrationSettings | None:
        stored = await settings.get_settings(info.context, tenant_id)
        return None if stored is None else IntegrationSettings.of(stored, info.context)

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="Which mandatory settings a tenant still lacks.",
    )
    async def readiness(self, info: ContextInfo, tenant_id: TenantArg) -> Readiness:
        stored, assessed = await settings.readiness(info.context, tenant_id)
        return Readiness.of(tenant_id, stored.provider if stored else None, assessed)

    @strawberry.field(
        extensions=needs(Permission.READ), description="A tenant's stored versions, newest first."
    )
    async def settings_history(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        first: Annotated[
            int,
            strawberry.argument(
                description="Page size, 1 to 100 (clamped). One operation may ask for 100 "
                "history and audit entries in all (COST_LIMIT past that)."
            ),
        ] = 20,
        before: Annotated[
            int | None,
            strawberry.argument(description="Only versions older than this one."),
        ] = None,
    ) -> SettingsHistoryPage:
        charge("settingsHistory", history.page_size(first))
        entries, has_more = await history.settings_history(
            info.context, tenant_id, first=first, before=before
        )
        versions = [
            SettingsVersion(
                id=strawberry.ID(f"SettingsVersion:{entry.tenant_id}:{entry.version}"),
                version=entry.version,
                changed_at=entry.changed_at,
                actor=entry.actor,
                changed_blocks=list(entry.changed_blocks),
                changed_paths=list(entry.changed_paths),
                settings=SettingsSnapshot.of(entry.settings, info.context),
            )
            for entry in entries
        ]
        return SettingsHistoryPage(
            versions=versions,
            has_more=has_more,
            next_before=versions[-1].version if has_more else None,
        )

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="The tenant and EHR an external gateway id belongs to; null for an unknown "
        "or rotated id.",
    )
    async def resolve_external_gateway(
        self,
        info: ContextInfo,
        external_gateway_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The id the external gateway presents."),
        ],
    ) -> ExternalGatewayOwner | None:
        owner = await gateway.resolve_external_gateway(info.context, external_gateway_id)
        if owner is None:
            return None
        return ExternalGatewayOwner(tenant_id=strawberry.ID(owner[0]), provider=owner[1])

    @strawberry.field(
        extensions=needs(Permission.VERIFY_JWT),
        description="Check a JWT that Epic sent (pause and resume, click to call): its kind "
        "(`typ` JWT or none; other kinds such as at+jwt are refused), its algorithm (asymmetric "
        "only), its key (only from the key set URL that discoverJku or refreshJku recorded; a "
        "`jku` header naming another URL is refused with JKU_MISMATCH and named in tokenJku, never "
        "fetched), signature, issuer (the JWT "
        "Issuer URL), audience (`aud`: the JWT Audience, else the external gateway's base path "
        "URL, or a URL under it) and validity period (60 s leeway). Keys are cached for 5 "
        "minutes; a token with an unknown kid fetches them again at most once per tenant every "
        "30 seconds.",
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

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="Evaluate the tenant's patient restriction expression for a patient's age.",
    )
    async def evaluate_patient_restriction(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        age: Annotated[int, strawberry.argument(description="The patient's age in whole years.")],
    ) -> RestrictionResult:
        outcome = await settings.evaluate_patient_restriction(info.context, tenant_id, age)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        restricted, expression = outcome
        return RestrictionEvaluated(restricted=restricted, expression=expression)

    @strawberry.field(
        extensions=needs(Permission.READ_AUDIT),
        description="The tenant's audit log, newest first: every stored version (who, roles, "
        "operation, changed fields with before and after, secrets redacted, request id) and "
        "attempts refused to callers of the tenant (a repeat within a minute is not kept again).",
    )
    async def audit_log(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        first: Annotated[
            int,
            strawberry.argument(
                description="Page size, 1 to 100 (clamped). One operation may ask for 100 "
                "history and audit entries in all (COST_LIMIT past that)."
            ),
        ] = 20,
        before: Annotated[
            str | None, strawberry.argument(description="Only entries older than this id.")
        ] = None,
    ) -> AuditLogPage:
        charge("auditLog", audit.page_size(first))
        entries, has_more = await audit.audit_log(
            info.context, tenant_id, first=first, before=before
        )
        page = [AuditEntry.of(entry) for entry in entries]
        return AuditLogPage(
            entries=page, has_more=has_more, next_before=page[-1].id if has_more else None
        )

    @strawberry.field(
        extensions=needs(Permission.READ_AUDIT),
        description="Verify the tenant's history and audit log: every entry must be chained, "
        "by a MAC keyed from the deployment's secret, to the one before it. Names the first "
        "entry that was altered, removed, inserted or moved, and why. Reads every entry.",
    )
    async def audit_integrity(self, info: ContextInfo, tenant_id: TenantArg) -> AuditIntegrity:
        charge("auditIntegrity", MAX_ENTRIES)
        verified = await audit.audit_integrity(info.context, tenant_id)
        return AuditIntegrity.of(verified, datetime.now(UTC))

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="What changed between two versions (0 means no settings), field by field; "
        "secrets show only whether they are set and their fingerprint.",
    )
    async def settings_diff(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        from_version: Annotated[int, strawberry.argument(description="The older version.")],
        to_version: Annotated[int, strawberry.argument(description="The newer version.")],
    ) -> SettingsDiffResult:
        outcome = await audit.settings_diff(info.context, tenant_id, from_version, to_version)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        return SettingsDiff(
            from_version=from_version,
            to_version=to_version,
            changes=[FieldChange.of(change) for change in outcome],
        )

    @strawberry.field(
        extensions=needs(Permission.READ),
        description="The tenant's configuration as a portable JSON document for importSettings "
        "(how a sandbox's configuration is promoted to production). It holds no secrets and no "
        "identities (external gateway ids, signing keys, the JKU's fetched keys). Null when the "
        "tenant has no settings.",
    )
    async def export_settings(self, info: ContextInfo, tenant_id: TenantArg) -> JSON | None:
        return cast(JSON | None, await promotion.export_settings(info.context, tenant_id))


VersionArg = Annotated[int | None, strawberry.argument(description=EXPECTED_VERSION)]

# What rollback and import may change (beyond identities, which both keep): every block.
_STORED_BLOCKS = block_models(
    SettingsBlock.EXTERNAL_GATEWAY,
    SettingsBlock.HEADERS,
    SettingsBlock.FHIR,
    SettingsBlock.EHR,
    SettingsBlock.OAUTH,
)


# Discovery records the JKU and the EHR block's JKU and issuer settings, never a secret.
def _discovery() -> list[FieldExtension]:
    return needs(
        Permission.INTEGRATE, block_models(SettingsBlock.EHR), parts=("jku",), secrets=False
    )


@strawberry.type(
    description="Writes, each on one tenant: expected failures are typed results, not errors."
)
class Mutation:
    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT), Idempotent()],
        description="Select the tenant's EHR. Every provider's settings are kept: switching "
        "back restores them.",
    )
    async def select_ehr_provider(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        provider: Annotated[EhrProvider, strawberry.argument(description="The EHR to select.")],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await settings.select_provider(
            info.context, tenant_id, provider, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT, block_models(SettingsBlock.HEADERS)), Idempotent()],
        description="Save the header settings of the active EHR.",
    )
    async def update_header_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            HeaderSettingsInput,
            strawberry.argument(description="The header settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.HEADERS, input, expected_version)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT), Idempotent()],
        description="Set the patient restriction expression (CEL over `age`); null removes it.",
    )
    async def update_patient_restriction(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        expression: Annotated[
            str | None,
            strawberry.argument(description="The CEL expression; null removes it. Required."),
        ] = strawberry.UNSET,
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        if expression is strawberry.UNSET:
            outcome: Outcome = Failed.one(
                ("expression",), "REQUIRED", "send an expression, or null to remove it"
            )
        else:
            outcome = await settings.update_patient_restriction(
                info.context, tenant_id, expression, expected_version
            )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT, block_models(SettingsBlock.FHIR)), Idempotent()],
        description="Save the FHIR settings of the active EHR.",
    )
    async def update_fhir_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            FhirSettingsInput,
            strawberry.argument(description="The FHIR settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.FHIR, input, expected_version)

    @strawberry.mutation(
        extensions=[*needs(Permission.EDIT, block_models(SettingsBlock.EHR)), Idempotent()],
        description="Save the settings specific to the active EHR.",
    )
    async def update_ehr_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            EhrSettingsInput,
            strawberry.argument(description="The EHR settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.EHR, input, expected_version)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE, block_models(SettingsBlock.OAUTH)), Idempotent()],
        name="updateOAuthSettings",
        description="Save the OAuth settings of the active EHR (Epic).",
    )
    async def update_oauth_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        input: Annotated[
            OAuthSettingsInput,
            strawberry.argument(description="The OAuth settings to change, for one EHR."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        return await _update_block(info, tenant_id, SettingsBlock.OAUTH, input, expected_version)

    @strawberry.mutation(
        extensions=[
            *needs(Permission.INTEGRATE, block_models(SettingsBlock.EXTERNAL_GATEWAY)),
            Idempotent(),
        ],
        description="Save the external gateway connection of the active EHR. The first save "
        "generates the external gateway id and base path URL; later saves keep them.",
    )
    async def create_external_gateway(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        connection: Annotated[
            ExternalGatewayConnectionInput,
            strawberry.argument(description="Where the EHR's API is and what it is."),
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await gateway.create_external_gateway(
            info.context, tenant_id, plain(connection), expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE), Idempotent()],
        description="Give the active EHR's external gateway a new id and base path URL. The old "
        "id stops resolving at once.",
    )
    async def regenerate_external_gateway_id(
        self, info: ContextInfo, tenant_id: TenantArg, expected_version: VersionArg = None
    ) -> SettingsResult:
        outcome = await gateway.regenerate_external_gateway_id(
            info.context, tenant_id, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.INTEGRATE), Idempotent(stores=False)],
        description="Call the EHR's FHIR metadata endpoint (the external gateway's base URL plus "
        "the FHIR url prefix) and report what answered. Stores nothing.",
    )
    async def test_external_gateway_connection(
        self, info: ContextInfo, tenant_id: TenantArg
    ) -> ConnectionTestResult:
        outcome = await gateway.test_external_gateway_connection(info.context, tenant_id)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        return GatewayConnectionTest.of(outcome)

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
        "may call, serving a JWK Set of public keys with ids) and must verify the signature of "
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
        outcome = await oauth.test_token(info.context, tenant_id)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        return OAuthTokenTest.of(outcome)

    @strawberry.mutation(
        extensions=[*needs(Permission.ROLLBACK, _STORED_BLOCKS, parts=("jku",)), Idempotent()],
        description="Store a new version whose settings equal those of an earlier version: a "
        "normal, audited write. External gateway ids and OAuth signing keys stay as they are now "
        "(a rotated id or key was rotated to revoke it).",
    )
    async def rollback_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        to_version: Annotated[
            int, strawberry.argument(description="The earlier version whose settings come back.")
        ],
        expected_version: VersionArg = None,
    ) -> SettingsResult:
        outcome = await promotion.rollback_settings(
            info.context, tenant_id, to_version, expected_version
        )
        return settings_result(outcome, info.context)

    @strawberry.mutation(
        extensions=[*needs(Permission.IMPORT, _STORED_BLOCKS, secrets=False), Idempotent()],
        description="Apply a document made by exportSettings (of this or another tenant) as one "
        "version, after validating all of it. The tenant keeps its own secrets, external gateway "
        "ids and signing keys. With dryRun, only report what would change.",
    )
    async def import_settings(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        document: Annotated[
            JSON, strawberry.argument(description="A document exportSettings produced.")
        ],
        dry_run: Annotated[
            bool,
            strawberry.argument(description="Only show what would change; store nothing."),
        ] = False,
        expected_version: VersionArg = None,
    ) -> ImportResult:
        if dry_run:
            preview = await promotion.preview_import(info.context, tenant_id, document)
            if isinstance(preview, Failed):
                return ValidationFailed.of(preview)
            return ImportPreview(
                changes=[FieldChange.of(change) for change in preview.changes],
                readiness=Readiness.of(tenant_id, preview.settings.provider, preview.readiness),
            )
        outcome = await promotion.import_settings(
            info.context, tenant_id, document, expected_version
        )
        return settings_result(outcome, info.context)


async def _update_block(
    info: ContextInfo,
    tenant_id: str,
    block: SettingsBlock,
    one_of: object,
    expected_version: int | None,
) -> SettingsResult:
    member, patch = chosen_member(one_of)
    outcome = await settings.update_block(
        info.context, tenant_id, block, member, patch, expected_version
    )
    return settings_result(outcome, info.context)


class SubscriptionOverHttp(Exception):
    """A subscription sent as an HTTP request: it is served over WebSocket only. Raised out of
    the view for the request gate to answer (as it answers JSON nested too deep)."""


class GatewaySchema(strawberry.Schema):
    multiplexer: Multiplexer
    documents: DocumentCache
    persisted: PersistedDocuments
    database_errors = 0  # requests that found the database unreachable
    # One deadline per operation for all its database calls (EHRGW_DB_TIMEOUT_MS); None: each
    # call waits as the client's own timeouts allow.
    database_deadline_s: float | None = None
    health: DatabaseHealth | None = None  # told when a request finds the database unreachable
    # Whether errors may name schema elements the client did not (suggestions, an enum's
    # values): only where the schema is open anyway (gateway_schema).
    suggestions = True

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Queries and mutations over HTTP. (WebSocket operations run through ``stream`` and
        ``subscribe``.) A subscription here would be executed as a query and fail on its first
        field with an internal error: it is refused before it runs, the document parsed only."""
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        try:
            # The one place every HTTP query and mutation passes: all its database calls, the
            # wait of a queued writer included, share one deadline.
            with database_deadline(self.database_deadline_s):
                return await super().execute(
                    query, variable_values, context_value, root_value, operation_name,
                    allowed - {OperationType.SUBSCRIPTION}, operation_extensions,
                )  # fmt: skip
        except InvalidOperationTypeError as refused:
            if refused.operation_type == OperationType.SUBSCRIPTION:
                raise SubscriptionOverHttp from None
            raise

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """Live subscriptions asking the same thing share one execution (see gql.multiplex).
        A query or mutation sent over WebSocket has one deadline for its database calls, as
        over HTTP; a subscription lives for as long as the client stays, so each of its reads
        (where it starts, each page of the history it replays) has a deadline of its own
        (resolvers.history_reads)."""

        async def own_stream() -> StreamResult:
            return await super(GatewaySchema, self).stream(
                query, variable_values, context_value, root_value, operation_name,
                operation_extensions, allowed_operation_types,
            )  # fmt: skip

        results = await self.multiplexer.stream(
            query, variable_values, operation_name, context_value, own_stream
        )
        if self.multiplexer.is_subscription(query, operation_name):
            return results
        return self._within_deadline(results)

    async def _within_deadline(self, results: StreamResult) -> StreamResult:
        """Each result of ``results`` (one, for a query or mutation) produced under the
        deadline: an async generator runs in the context of whoever asks it for its next
        item."""
        try:
            while True:
                with database_deadline(self.database_deadline_s):
                    try:
                        result = await anext(results)
                    except StopAsyncIteration:
                        return
                yield result
        finally:
            await results.aclose()

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors in reading a request quote the submitted values; they leave here, for the
        response and the log, without them. Errors raised while executing are logged in full."""
        for error in errors:
            if error.path is None:
                # The document was refused before it ran (syntax, validation, a limit).
                error.message = request_error_message(
                    error, self._schema, open_schema=self.suggestions
                )
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED", **(error.extensions or {})}
                logger.info("request refused: %s", error.message)
            elif (error.extensions or {}).get("code"):  # an expected refusal, raised as such
                logger.info("operation refused: %s", error.message)
            elif isinstance(error.original_error, HistoryTampered):
                # Logged and counted where it was found (ehr_gateway.security); the client is
                # told which tenant, not what the forged entry holds.
                error.message = error.original_error.client_message
                error.extensions = {"code": "HISTORY_TAMPERED"}
            elif is_storage_full(error.original_error):
                # Not a fault of the gateway's, and not one a retry mends: an operator must
                # free space. The repository logged which write failed (never its document).
                full = error.original_error
                logger.warning("%s refused: the database has no space left", _field(error))
                if isinstance(full, StorageFull):
                    error.message, stored = full.client_message, full.stored
                else:  # a write outside the settings path (an audited refusal, say)
                    error.message, stored = STORAGE_FULL_MESSAGE, None
                error.extensions = {"code": "STORAGE_FULL", "stored": stored}
            elif is_unavailable(error.original_error):
                # Expected while the database is away: a clear answer the client can retry.
                logger.warning("database unavailable: %s", error.original_error)
                self.database_errors += 1
                if self.health is not None:
                    self.health.note_unreachable(reason(error.original_error))
                error.message = _unavailable_message(execution_context)
                error.extensions = {"code": "SERVICE_UNAVAILABLE"}
            else:
                # Unexpected: the client gets an id to quote, the log has the id and the detail.
                error_id = uuid.uuid4().hex[:12]
                original = error.original_error
                if isinstance(original, PyMongoError):
                    # A driver error's text holds the command it failed on: for a write, the
                    # document with its settings. The log gets the server's code and message
                    # and where it was raised, not the text.
                    logger.error(
                        "internal error %s in %s: %s\n%s", error_id, _field(error),
                        error_summary(original),
                        "".join(traceback.format_tb(original.__traceback__)).rstrip(),
                    )  # fmt: skip
                else:
                    logger.error("internal error %s", error_id, exc_info=original or error)
                error.message = f"internal error (error id {error_id})"
                error.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}


def _unavailable_message(execution_context: ExecutionContext | None) -> str:
    """A write cut short by the database may still have been stored (its commit point reached
    the database, its answer did not): the client is told, and how to find out."""
    if execution_context is not None and execution_context.operation_type == OperationType.MUTATION:
        return (
            "the database is unavailable; the write may have been stored. Retry with the same "
            "idempotencyKey (it returns the stored version, or stores it once), or read "
            "settingsHistory, to find out"
        )
    return "the database is unavailable; retry shortly"


def _field(error: GraphQLError) -> str:
    """The root field an error was raised under (the operation, for a mutation)."""
    return str(error.path[0]) if error.path else "request"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one GraphQL document may ask for."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 800
    max_selections: int = DEFAULT_MAX_SELECTIONS
    max_repeats: int = DEFAULT_MAX_REPEATS


class ExecutionWithoutSuggestions(StrawberryGraphQLCoreExecutionContext):
    """Execution whose request errors (variables of the wrong shape: an unknown input field, an
    enum value misspelled) name no schema element the client did not name itself."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})


def validation_rules(limits: Limits, *, introspection: bool) -> list[type[ASTValidationRule]]:
    """The rules the gateway adds to GraphQL's own: the depth and alias limits, and no
    introspection unless it is on."""
    rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    if not introspection:
        rules.extend(DisableIntrospection().validation_rules)
    return rules


def gateway_schema(
    limits: Limits = Limits(),
    *,
    introspection: bool = True,
    suggestions: bool = True,
    persisted: PersistedDocumentsSetup | None = None,
) -> GatewaySchema:
    """The schema under ``limits``. ``suggestions``: whether errors may suggest names ("Did you
    mean ...?"), which tell a client names of the schema it did not know: like introspection,
    for development."""
    # The limiters' validation rules are built once: the validation cache is keyed by the rule
    # classes, and a limiter built per request would make a new class, and a miss, every time.
    rules = validation_rules(limits, introspection=introspection)
    selection_limits = SelectionLimits(limits.max_selections, limits.max_repeats)
    # Parsed documents, shared by HTTP, WebSocket operations and the multiplexer, within one
    # token limit and one memory budget.
    documents = DocumentCache()
    # Factories: Strawberry builds a fresh extension for each operation.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: PersistedDocumentsExtension(built.persisted),
        lambda: ParseByText(documents),
        ListBudget,
        lambda: ValidationByText(selection_limits, hide_suggestions=not suggestions),
        RecordExecution,
    ]
    built = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=None if suggestions else ExecutionWithoutSuggestions,
        scalar_overrides=SCALAR_OVERRIDES,
    )
    built.documents = documents
    built.suggestions = suggestions
    # Trusted documents are validated by the schema they run on, with the rules requests get.
    built.persisted = (persisted or PersistedDocumentsSetup()).build(
        built._schema, rules, selection_limits, limits.max_tokens,
        hide_suggestions=not suggestions,
    )  # fmt: skip
    built.multiplexer = Multiplexer(documents, limits.max_tokens)
    return built


schema = gateway_schema()
