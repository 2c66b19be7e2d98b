"""Who may call what, against a gateway that trusts a real OpenID issuer on loopback.

Every root field of the committed schema.graphql is called by every role, on the caller's own
tenant and on another one, and without a token; the documents are generated from the schema, so
a new operation is covered as soon as it is published (and fails here until it is given its
permission in REQUIRED_PERMISSION). Subscriptions are tried over WebSocket against a served
gateway; rejected tokens and the audit of denied attempts are checked at the end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    build_schema,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    is_required_input_field,
    parse,
    validate,
)
from joserfc.jwk import RSAKey

from ehr_gateway.server.app import create_app
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import SELECT_EPIC
from tests.issuers import SignInIssuer, serve_issuer
from tests.processes import TransportWsClient
from tests.servers import serve_on_loopback

# --- What the schema publishes, and what each operation needs ---------------------------------

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
SCHEMA = build_schema(SCHEMA_FILE.read_text())
ROOT_TYPES = ("Query", "Mutation", "Subscription")

READ = "settings:read"
SUBSCRIBE = "settings:subscribe"
EDIT = "settings:edit"
INTEGRATE = "integration:edit"
WRITE_SECRETS = "secrets:write"
ROLLBACK = "settings:rollback"
IMPORT = "settings:import"
READ_AUDIT = "audit:read"
VERIFY_JWT = "jwt:verify"

# The permission every root field needs, as documented (not read from the application): a root
# field missing here fails test_every_published_operation_names_its_permission.
REQUIRED_PERMISSION: dict[str, str] = {
    "Query.integrationSettings": READ,
    "Query.readiness": READ,
    "Query.settingsHistory": READ,
    "Query.resolveExternalGateway": READ,
    "Query.verifyEpicJwt": VERIFY_JWT,
    "Query.evaluatePatientRestriction": READ,
    "Query.auditLog": READ_AUDIT,
    "Query.auditIntegrity": READ_AUDIT,
    "Query.settingsDiff": READ,
    "Query.exportSettings": READ,
    "Query.tenants": READ,
    "Mutation.selectEhrProvider": EDIT,
    "Mutation.updateHeaderSettings": EDIT,
    "Mutation.updatePatientRestriction": EDIT,
    "Mutation.updateFhirSettings": EDIT,
    "Mutation.updateEhrSettings": EDIT,
    "Mutation.updateOAuthSettings": INTEGRATE,
    "Mutation.createExternalGateway": INTEGRATE,
    "Mutation.regenerateExternalGatewayId": INTEGRATE,
    "Mutation.testExternalGatewayConnection": INTEGRATE,
    "Mutation.discoverJku": INTEGRATE,
    "Mutation.refreshJku": INTEGRATE,
    "Mutation.adoptObservedJku": INTEGRATE,
    "Mutation.generateOAuthSigningKey": INTEGRATE,
    "Mutation.testOAuthToken": INTEGRATE,
    "Mutation.rollbackSettings": ROLLBACK,
    "Mutation.importSettings": IMPORT,
    "Subscription.configurationChanged": SUBSCRIBE,
    "Subscription.configurationChanges": SUBSCRIBE,
}

_VIEWER = frozenset({READ, SUBSCRIBE})
_EDITOR = _VIEWER | {EDIT}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": _VIEWER,
    "editor": _EDITOR,
    "integrator": _EDITOR | {INTEGRATE, WRITE_SECRETS, ROLLBACK, IMPORT, READ_AUDIT, VERIFY_JWT},
    "service": _VIEWER | {VERIFY_JWT},
}
ROLES = tuple(ROLE_PERMISSIONS)

# Fields that name no tenant: the caller needs the permission on some tenant, and the answer
# about another tenant's object is null, as for an unknown one (resolveExternalGateway), or
# lists only the caller's tenants (tenants).
TENANTLESS_FIELDS = frozenset({"Query.resolveExternalGateway", "Query.tenants"})


def published_root_fields(*type_names: str) -> list[str]:
    """Every root field of these root types in schema.graphql, as "Type.field"."""
    names = []
    for type_name in type_names:
        root = SCHEMA.get_type(type_name)
        if isinstance(root, GraphQLObjectType):
            names += [f"{type_name}.{field_name}" for field_name in root.fields]
    return names


# --- Documents generated from the schema ------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str  # "Type.field"
    document: str
    variables: dict[str, Any]

    @property
    def field(self) -> str:
        return self.name.partition(".")[2]


def operation_for(name: str, tenant_id: str, provider: str = "EPIC", **given: Any) -> Operation:
    """A document calling root field ``name`` with a variable for each required argument (from
    ``given``, else a sample value for ``tenant_id`` on ``provider``), selecting __typename of
    an object or union result."""
    type_name, _, field_name = name.partition(".")
    root = SCHEMA.get_type(type_name)
    assert isinstance(root, GraphQLObjectType), type_name
    field = root.fields[field_name]
    definitions: list[str] = []
    arguments: list[str] = []
    variables: dict[str, Any] = {}
    for argument_name, argument in field.args.items():
        if not is_required_argument(argument):
            continue
        definitions.append(f"${argument_name}: {argument.type}")
        arguments.append(f"{argument_name}: ${argument_name}")
        variables[argument_name] = (
            given[argument_name]
            if argument_name in given
            else sample_value(argument.type, argument_name, tenant_id, provider)
        )
    keyword = type_name.lower() if type_name != "Query" else "query"
    signature = f"({', '.join(definitions)})" if definitions else ""
    call = f"{field_name}({', '.join(arguments)})" if arguments else field_name
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    operation_name = "Authz" + field_name[0].upper() + field_name[1:]
    document = f"{keyword} {operation_name}{signature} {{ {call}{selection} }}"
    return Operation(name, document, variables)


def sample_value(graphql_type: GraphQLInputType, name: str, tenant_id: str, provider: str) -> Any:
    """A value of ``graphql_type`` for an argument or input field called ``name``."""
    if isinstance(graphql_type, GraphQLNonNull):
        return sample_value(graphql_type.of_type, name, tenant_id, provider)
    if isinstance(graphql_type, GraphQLList):
        return [sample_value(graphql_type.of_type, name, tenant_id, provider)]
    if isinstance(graphql_type, GraphQLEnumType):
        values = list(graphql_type.values)
        return provider if provider in values else values[0]  # the tenant's own EHR
    if isinstance(graphql_type, GraphQLInputObjectType):
        if is_one_of(graphql_type):
            member = provider.lower()
            return {
                member if member in graphql_type.fields else next(iter(graphql_type.fields)): {}
            }
        return {
            field_name: sample_value(input_field.type, field_name, tenant_id, provider)
            for field_name, input_field in graphql_type.fields.items()
            if is_required_input_field(input_field)
        }
    assert isinstance(graphql_type, GraphQLScalarType), graphql_type
    if graphql_type.name == "ID":
        return tenant_id if name in ("tenantId", "tenantIds") else "x"
    samples: dict[str, Any] = {
        "String": "x",
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "JSON": {},
        "DateTime": "2024-01-01T00:00:00Z",
    }
    assert graphql_type.name in samples, f"no sample value for scalar {graphql_type.name}"
    return samples[graphql_type.name]


def is_one_of(input_type: GraphQLInputObjectType) -> bool:
    if getattr(input_type, "is_one_of", False):
        return True
    node = input_type.ast_node
    return node is not None and any(d.name.value == "oneOf" for d in node.directives or ())


# --- A real OpenID issuer on loopback ---------------------------------------------------------


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[SignInIssuer]:
    async with serve_issuer(SignInIssuer()) as issuer:
        yield issuer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(issuer: SignInIssuer, tenants: Sequence[str]) -> str:
    """A token with ``alg: none`` and otherwise valid claims."""
    header = {"alg": "none", "typ": "JWT", "kid": issuer.key.kid}
    now = int(time.time())
    claims = {
        "iss": issuer.url, "aud": issuer.audience, "sub": "mallory", "iat": now, "exp": now + 300,
        "tenants": list(tenants), "roles": list(ROLES),
    }  # fmt: skip
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


# --- Gateways trusting the issuer, and tenants on them ----------------------------------------

CREATE_EXTERNAL_GATEWAY = """
mutation CreateExternalGateway($tenantId: ID!, $connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: $tenantId, connection: $connection) {
    __typename
    ... on SettingsSaved { settings { externalGateway { externalGatewayId } } }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
# Loopback, so that a connection test fails at once (PRIVATE_ADDRESS) rather than waiting on DNS.
EHR_CONNECTION = {"name": "EHR", "baseUrl": "https://127.0.0.1:9/fhir", "environment": "PRODUCTION"}
CURRENT_VERSION = """
query CurrentVersion($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version }
}
"""
TENANT_SETTINGS = """
query TenantSettings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    tenantId version provider externalGateway { externalGatewayId basePathUrl name baseUrl }
  }
}
"""
UPDATE_PATIENT_RESTRICTION = """
mutation UpdatePatientRestriction($tenantId: ID!, $expression: String) {
  updatePatientRestriction(tenantId: $tenantId, expression: $expression) { __typename }
}
"""
AUDIT_LOG = """
query AuditLog($tenantId: ID!) {
  auditLog(tenantId: $tenantId) { entries { outcome operation subject missingPermission } }
}
"""
CONFIGURATION_CHANGED = """
subscription ConfigurationChanged($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) { tenantId version }
}
"""
CONFIGURATION_CHANGES = """
subscription ConfigurationChanges($tenantIds: [ID!]) {
  configurationChanges(tenantIds: $tenantIds) { tenantId version }
}
"""


@dataclass(frozen=True)
class Tenant:
    id: str
    external_gateway_id: str


async def new_tenant(staff: Gateway) -> Tenant:
    """A new Epic tenant with an external gateway, set up by staff."""
    tenant_id = f"authz-{uuid.uuid4().hex[:10]}"
    await staff.execute(SELECT_EPIC, tenantId=tenant_id)
    data = await staff.execute(
        CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=EHR_CONNECTION
    )
    saved = data["createExternalGateway"]
    assert saved["__typename"] == "SettingsSaved", saved
    return Tenant(tenant_id, saved["settings"]["externalGateway"]["externalGatewayId"])


async def current_version(staff: Gateway, tenant_id: str) -> int | None:
    settings = (await staff.execute(CURRENT_VERSION, tenantId=tenant_id))["integrationSettings"]
    return None if settings is None else int(settings["version"])


def as_caller(staff: Gateway, token: str) -> Gateway:
    """The same app, spoken to with ``token``."""
    return Gateway(staff.client, staff.config, token)


async def send(
    client: httpx.AsyncClient, operation: Operation, token: str | None
) -> httpx.Response:
    """``operation`` over HTTP, with ``token`` as bearer (None: no Authorization header). (Not
    Gateway.post: a variable may be called ``document``, as importSettings's is.)"""
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    payload = {"query": operation.document, "variables": operation.variables}
    return await client.post("/graphql", json=payload, headers=headers)


async def call(caller: Gateway, operation: Operation) -> dict[str, Any]:
    """``operation`` as ``caller``; its authenticated answer."""
    response = await send(caller.client, operation, caller.token)
    assert response.status_code == 200, (operation.name, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


async def post_with(
    client: httpx.AsyncClient, token: str, document: str, **variables: Any
) -> httpx.Response:
    """``document`` over HTTP with ``token``, whatever the answer's status."""
    return await client.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )


@dataclass(frozen=True)
class World:
    """One gateway trusting the issuer, staff on it, and two tenants."""

    staff: Gateway
    issuer: SignInIssuer
    own: Tenant
    other: Tenant

    def caller(self, role: str, tenant: Tenant) -> Gateway:
        """A caller holding ``role`` on ``tenant`` only."""
        return as_caller(
            self.staff, self.issuer.issue(f"{role}-of-{tenant.id}", [tenant.id], [role])
        )


@pytest.fixture
async def gateway(
    database_url: str, tmp_path: Path, issuer: SignInIssuer
) -> AsyncIterator[Gateway]:
    """A gateway trusting ``issuer``, spoken to by staff (every role on every tenant)."""
    config = gateway_config(
        database_url, tmp_path, auth_issuer=issuer.url, allow_insecure_http=True
    )
    async for opened in open_gateway(config):
        yield as_caller(opened, issuer.staff())


@pytest.fixture(scope="module")
async def world(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, issuer: SignInIssuer
) -> AsyncIterator[World]:
    """Like ``gateway``, but one for the whole matrix (so its data dir comes from
    tmp_path_factory): opening a gateway per case would add about 20 s."""
    config = gateway_config(
        database_url,
        tmp_path_factory.mktemp("matrix"),
        auth_issuer=issuer.url,
        allow_insecure_http=True,
    )
    async for opened in open_gateway(config):
        staff = as_caller(opened, issuer.staff())
        yield World(staff, issuer, await new_tenant(staff), await new_tenant(staff))


# --- The matrix: every root field of Query and Mutation ---------------------------------------

HTTP_FIELDS = published_root_fields("Query", "Mutation")
ANONYMOUS = "anonymous"
MATRIX = [pytest.param(name, ANONYMOUS, "", id=f"{name}-no-token") for name in HTTP_FIELDS] + [
    pytest.param(name, role, where, id=f"{name}-{role}-{where}")
    for name in HTTP_FIELDS
    for role in ROLES
    for where in ("own", "other")
]


def test_every_published_operation_names_its_permission() -> None:
    published = published_root_fields(*ROOT_TYPES)
    missing = [name for name in published if name not in REQUIRED_PERMISSION]
    assert not missing, (
        f"schema.graphql publishes {missing} but REQUIRED_PERMISSION in {__name__} does not say "
        "which permission they need: add them (and check the field has a Requires extension)"
    )
    assert published_root_fields("Query") and published_root_fields("Mutation")


def test_every_generated_document_is_valid_against_the_schema() -> None:
    """Guards the matrix: a document the gateway refused as invalid would prove nothing."""
    for name in published_root_fields(*ROOT_TYPES):
        operation = operation_for(name, "tenant-a")
        errors = validate(SCHEMA, parse(operation.document))
        assert not errors, (name, operation.document, errors)


def codes(body: dict[str, Any]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


def assert_forbidden(
    body: dict[str, Any], operation: Operation, permission: str, tenant: str | None, who: str
) -> None:
    """The field's result is null and its error says FORBIDDEN, naming ``permission``."""
    field = operation.field
    assert body.get("data") is None or body["data"].get(field) is None, (
        f"{operation.name} by {who}: expected no data, got {body['data']}"
    )
    errors = [error for error in body.get("errors", []) if error.get("path") == [field]]
    assert errors, f"{operation.name} by {who}: expected a FORBIDDEN error, got {body}"
    [error] = errors
    extensions = error.get("extensions", {})
    assert extensions.get("code") == "FORBIDDEN", f"{operation.name} by {who}: {error}"
    assert extensions.get("permission") == permission, (
        f"{operation.name} by {who}: expected the error to name {permission}: {error}"
    )
    where = f" on tenant {tenant}" if tenant is not None else ""
    assert error["message"] == f"missing permission {permission}{where}", error


def assert_allowed(body: dict[str, Any], operation: Operation, who: str) -> None:
    """The field ran: no refusal (other errors, such as a typed ValidationFailed, are fine)."""
    assert "data" in body, f"{operation.name} by {who} did not run: {body}"
    refusals = [code for code in codes(body) if code in ("FORBIDDEN", "UNAUTHENTICATED")]
    assert not refusals, f"{operation.name} by {who} was refused: {body['errors']}"


@pytest.mark.parametrize(("name", "role", "where"), MATRIX)
async def test_root_field_is_allowed_exactly_by_the_roles_holding_its_permission(
    world: World, name: str, role: str, where: str
) -> None:
    permission = REQUIRED_PERMISSION.get(name)
    assert permission is not None, f"{name} has no entry in REQUIRED_PERMISSION"
    if name in TENANTLESS_FIELDS:
        await _check_tenantless_field(world, name, role, where, permission)
        return
    tenant = world.other if where == "other" else world.own
    operation = operation_for(name, tenant.id)
    if role == ANONYMOUS:
        await _check_refused_without_token(world, operation)
        return
    who = f"{role} of {world.own.id} on the {where} tenant"
    version_before = await current_version(world.staff, tenant.id)
    body = await call(world.caller(role, world.own), operation)
    if where == "own" and permission in ROLE_PERMISSIONS[role]:
        assert_allowed(body, operation, who)
        return
    assert_forbidden(body, operation, permission, tenant.id, who)
    assert await current_version(world.staff, tenant.id) == version_before, (
        f"{name} by {who} was refused but stored a version"
    )


async def _check_refused_without_token(world: World, operation: Operation) -> None:
    response = await send(world.staff.client, operation, None)
    assert response.status_code == 401, (operation.name, response.status_code, response.text)
    assert codes(response.json()) == ["UNAUTHENTICATED"], response.text
    assert "data" not in response.json(), response.text


async def _check_tenantless_field(
    world: World, name: str, role: str, where: str, permission: str
) -> None:
    """resolveExternalGateway: another tenant's id is as unknown as a made-up one. tenants: the
    caller's own tenants only."""
    if name == "Query.tenants":
        await _check_tenant_directory(world, role, permission)
        return
    own, other = await new_tenant(world.staff), await new_tenant(world.staff)  # fresh ids
    target = other if where == "other" else own
    operation = operation_for(name, own.id, externalGatewayId=target.external_gateway_id)
    if role == ANONYMOUS:
        await _check_refused_without_token(world, operation)
        return
    who = f"{role} of {own.id} on the {where} tenant"
    body = await call(world.caller(role, own), operation)
    if permission not in ROLE_PERMISSIONS[role]:
        assert_forbidden(body, operation, permission, None, who)
        return
    assert "errors" not in body, f"{name} by {who}: {body['errors']}"
    answer = body["data"][operation.field]
    if where == "own":
        assert answer == {"__typename": "ExternalGatewayOwner"}, f"{name} by {who}: {body}"
    else:
        assert answer is None, f"{name} by {who} revealed another tenant's gateway: {body}"
        assert other.id not in json.dumps(body)


async def _check_tenant_directory(world: World, role: str, permission: str) -> None:
    """Every role holding the permission lists the tenants its token names, and no other: not
    the other tenant, nor those of the rest of the matrix."""
    operation = Operation(
        "Query.tenants", "query AuthzTenantDirectory { tenants { items { tenantId } } }", {}
    )
    if role == ANONYMOUS:
        await _check_refused_without_token(world, operation)
        return
    who = f"{role} of {world.own.id}"
    body = await call(world.caller(role, world.own), operation)
    if permission not in ROLE_PERMISSIONS[role]:
        assert_forbidden(body, operation, permission, None, who)
        return
    assert "errors" not in body, f"tenants by {who}: {body['errors']}"
    listed = [row["tenantId"] for row in body["data"]["tenants"]["items"]]
    assert listed == [world.own.id], f"tenants by {who} listed {listed}"
    assert world.other.id not in json.dumps(body)


# --- Subscriptions over WebSocket against a served gateway ------------------------------------


@dataclass(frozen=True)
class ServedGateway:
    """A gateway served by uvicorn on loopback, trusting the issuer."""

    url: str
    staff: Gateway  # over HTTP to ``url``
    issuer: SignInIssuer
    own: Tenant
    other: Tenant

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    async def feed_subscribers(self) -> int:
        health = (await self.staff.client.get("/healthz")).json()
        return int(health["feedSubscribers"])

    async def wait_for_feed_subscribers(self, count: int, within: float = 10) -> None:
        """A live subscription sees only versions stored after it is registered."""
        deadline = time.monotonic() + within
        while (current := await self.feed_subscribers()) != count:
            assert time.monotonic() < deadline, f"feed subscribers stayed at {current}, not {count}"
            await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
async def served(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, issuer: SignInIssuer
) -> AsyncIterator[ServedGateway]:
    config = gateway_config(
        database_url,
        tmp_path_factory.mktemp("served"),
        auth_issuer=issuer.url,
        allow_insecure_http=True,
    )
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        serve_on_loopback(app) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        staff = Gateway(client, config, issuer.staff())
        yield ServedGateway(url, staff, issuer, await new_tenant(staff), await new_tenant(staff))


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
async def test_configuration_changed_is_open_to_every_role_on_its_own_tenant_only(
    served: ServedGateway, role: str, where: str
) -> None:
    tenant = served.other if where == "other" else served.own
    token = served.issuer.issue(f"{role}-subscriber", [served.own.id], [role])
    subscriber = await TransportWsClient.connect(served.ws_url, token=token)
    try:
        await subscriber.subscribe("1", CONFIGURATION_CHANGED, tenantId=tenant.id, sinceVersion=0)
        if where == "own":
            change = (await subscriber.next_data("1"))["configurationChanged"]
            assert change == {"tenantId": tenant.id, "version": 1}
        else:
            message = await subscriber.receive()
            assert message["type"] == "error" and message["id"] == "1", message
            [error] = message["payload"]
            assert error["extensions"] == {"code": "FORBIDDEN", "permission": SUBSCRIBE}, error
            assert error["message"] == f"missing permission {SUBSCRIBE} on tenant {tenant.id}"
    finally:
        await subscriber.close()
    await served.wait_for_feed_subscribers(0)


async def test_configuration_changes_naming_another_tenant_is_refused(
    served: ServedGateway,
) -> None:
    token = served.issuer.issue("dashboard", [served.own.id], ["viewer"])
    dashboard = await TransportWsClient.connect(served.ws_url, token=token)
    try:
        tenant_ids = [served.own.id, served.other.id]
        await dashboard.subscribe("both", CONFIGURATION_CHANGES, tenantIds=tenant_ids)
        message = await dashboard.receive()
        assert message["type"] == "error" and message["id"] == "both", message
        [error] = message["payload"]
        assert error["extensions"] == {"code": "FORBIDDEN", "permission": SUBSCRIBE}, error
        assert served.other.id in error["message"] and served.own.id not in error["message"]
    finally:
        await dashboard.close()
    await served.wait_for_feed_subscribers(0)


def _bad_connection_params(issuer: SignInIssuer, tenant_id: str) -> dict[str, dict[str, str]]:
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return {
        "no-token": {},
        "garbage": bearer("not-a-jwt"),
        "expired": bearer(issuer.issue("late", [tenant_id], ["viewer"], exp_in=-300)),
        "wrong-audience": bearer(
            issuer.issue("elsewhere", [tenant_id], ["viewer"], aud="another-service")
        ),
        "alg-none": bearer(unsigned_token(issuer, [tenant_id])),
    }


@pytest.mark.parametrize("kind", ["no-token", "garbage", "expired", "wrong-audience", "alg-none"])
async def test_a_connection_without_a_valid_token_is_refused(
    served: ServedGateway, kind: str
) -> None:
    params = _bad_connection_params(served.issuer, served.own.id)[kind]
    client = await TransportWsClient.connect(served.ws_url, init=False)
    await client.send({"type": "connection_init", "payload": params})
    assert await client.close_code() == 4403


async def test_a_wildcard_subscription_carries_only_the_callers_tenants(
    served: ServedGateway,
) -> None:
    await served.wait_for_feed_subscribers(0)
    token = served.issuer.issue("dashboard", [served.own.id], ["viewer"])
    dashboard = await TransportWsClient.connect(served.ws_url, token=token)
    try:
        await dashboard.subscribe("all", CONFIGURATION_CHANGES)
        await served.wait_for_feed_subscribers(1)
        staff = served.staff
        for tenant, expression in ((served.other, "age < 2"), (served.own, "age < 3")):
            await staff.execute(
                UPDATE_PATIENT_RESTRICTION, tenantId=tenant.id, expression=expression
            )
        version = await current_version(staff, served.own.id)

        change = (await dashboard.next_data("all"))["configurationChanges"]
        assert change == {"tenantId": served.own.id, "version": version}, (
            f"the dashboard of {served.own.id} received {change}"
        )
        with pytest.raises(TimeoutError):  # nothing of the other tenant follows, either
            message = await dashboard.receive(within=0.5)
            pytest.fail(f"unexpected message: {message}")
    finally:
        await dashboard.close()
    await served.wait_for_feed_subscribers(0)


# --- Tokens the gateway must refuse ------------------------------------------------------------


def _bad_tokens(issuer: SignInIssuer, tenant_id: str) -> dict[str, str]:
    roles = list(ROLES)
    impostor = RSAKey.generate_key(2048, parameters={"kid": str(issuer.key.kid)})
    return {
        "expired": issuer.issue("late", [tenant_id], roles, exp_in=-120),  # past the leeway
        "wrong-audience": issuer.issue("elsewhere", [tenant_id], roles, aud="another-service"),
        "wrong-issuer": issuer.issue("forger", [tenant_id], roles, iss=f"{issuer.url}/other"),
        "other-key-same-kid": issuer.issue("impostor", [tenant_id], roles, key=impostor),
        "alg-none": unsigned_token(issuer, [tenant_id]),
    }


@pytest.mark.parametrize(
    "kind", ["expired", "wrong-audience", "wrong-issuer", "other-key-same-kid", "alg-none"]
)
async def test_a_token_the_issuer_did_not_grant_is_refused_without_revealing_anything(
    gateway: Gateway, issuer: SignInIssuer, kind: str
) -> None:
    tenant = await new_tenant(gateway)
    token = _bad_tokens(issuer, tenant.id)[kind]

    response = await post_with(gateway.client, token, TENANT_SETTINGS, tenantId=tenant.id)

    assert response.status_code == 401, (kind, response.status_code, response.text)
    body = response.json()
    assert codes(body) == ["UNAUTHENTICATED"], body
    assert body["errors"][0]["message"].startswith("not authenticated: "), body
    assert "data" not in body, body
    assert tenant.external_gateway_id not in response.text
    assert "127.0.0.1:9" not in response.text  # the tenant's EHR base URL


async def test_the_same_request_with_a_granted_token_is_answered(
    gateway: Gateway, issuer: SignInIssuer
) -> None:
    """The control for the refusals above: only the token differs."""
    tenant = await new_tenant(gateway)
    token = issuer.issue("granted", [tenant.id], ["viewer"])

    response = await post_with(gateway.client, token, TENANT_SETTINGS, tenantId=tenant.id)

    assert response.status_code == 200, response.text
    settings = response.json()["data"]["integrationSettings"]
    assert settings["externalGateway"]["externalGatewayId"] == tenant.external_gateway_id


# --- Denied attempts are audited ---------------------------------------------------------------


async def test_a_denied_mutation_is_in_the_tenants_audit_log(
    gateway: Gateway, issuer: SignInIssuer
) -> None:
    tenant = await new_tenant(gateway)
    viewer = as_caller(gateway, issuer.issue("viewer-vera", [tenant.id], ["viewer"]))
    integrator = as_caller(gateway, issuer.issue("integrator-ida", [tenant.id], ["integrator"]))

    denied = await viewer.post(UPDATE_PATIENT_RESTRICTION, tenantId=tenant.id, expression="age < 1")
    assert codes(denied) == ["FORBIDDEN"], denied

    entries = (await integrator.execute(AUDIT_LOG, tenantId=tenant.id))["auditLog"]["entries"]
    assert {
        "outcome": "DENIED",
        "operation": "updatePatientRestriction",
        "subject": "viewer-vera",
        "missingPermission": EDIT,
    } in entries, entries
