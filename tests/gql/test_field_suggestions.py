"""Errors suggest schema names ("Did you mean 'integrationSettings'?") only in development mode:
elsewhere they would tell a client, one guess at a time, the schema that introspection keeps
from it. Over HTTP and WebSocket, in validation and in the coercion of variables. Nor do they
name, outside development, the type a field was looked up on or returns, a required argument the
client left out, or an input object's type: each message names only what the client wrote."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.server.app import create_app
from tests.conftest import Gateway, gateway_config
from tests.issuers import SignInIssuer, new_key, serve_issuer
from tests.processes import LegacyWsClient, TransportWsClient
from tests.servers import serve_on_loopback

MISSPELLED_FIELD = '{ integrationSetting(tenantId: "acme") { version } }'
MISSPELLED_ARGUMENT = '{ integrationSettings(tenantID: "acme") { version } }'
MISSPELLED_ENUM_VALUE = """
mutation Select { selectEhrProvider(tenantId: "acme", provider: EPI) { __typename } }
"""
MISSPELLED_TYPE = """
query Read($provider: EhrProvide) { integrationSettings(tenantId: "acme") { version } }
"""
SELECT_PROVIDER = """
mutation Select($provider: EhrProvider!) {
  selectEhrProvider(tenantId: "acme", provider: $provider) { __typename }
}
"""
UPDATE_HEADERS = """
mutation Headers($input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: "acme", input: $input) { __typename }
}
"""
MISSPELLED_SUBSCRIPTION_FIELD = 'subscription { configurationChange(tenantId: "acme") { version } }'

# A document or variables a client got wrong, and the name a suggestion would tell it.
MISTAKES = [
    pytest.param(MISSPELLED_FIELD, {}, "integrationSettings", id="field"),
    pytest.param(MISSPELLED_ARGUMENT, {}, "tenantId", id="argument"),
    pytest.param(MISSPELLED_ENUM_VALUE, {}, "EPIC", id="enum-value"),
    pytest.param(MISSPELLED_TYPE, {}, "EhrProvider", id="type"),
    pytest.param(SELECT_PROVIDER, {"provider": "EPI"}, "EPIC", id="enum-variable"),
    pytest.param(
        UPDATE_HEADERS, {"input": {"epic": {"epicClientID": "x"}}}, "epicClientId",
        id="input-field-variable",
    ),
]  # fmt: skip

# Each document names no type, and the second no argument: a type or argument name a message
# mentions would come from the schema.
UNSELECTED_UNION = 'query Ehr { integrationSettings(tenantId: "acme") { ehr } }'
MISSING_ARGUMENT = "query Settings { integrationSettings { version } }"
MISSPELT_FIELD = 'query Settings { integrationSettings(tenantId: "acme") { versoin } }'
UNKNOWN_INPUT_FIELD = """
mutation Save { updateEhrSettings(tenantId: "acme", input: {epic: {nope: "x"}}) { __typename } }
"""
SELECTION_ON_A_SCALAR = 'query Settings { integrationSettings(tenantId: "acme") { version { x } } }'
UNKNOWN_ARGUMENT = 'query Settings { integrationSettings(tenantId: "acme", nope: 1) { version } }'
NOT_AN_OBJECT = 'mutation Save { updateEhrSettings(tenantId: "acme", input: 5) { __typename } }'
# A fragment on a type the field cannot return would name the field's own type; a variable in
# the wrong place the argument's type; a oneOf literal without a member, or a null for a
# required argument, the input's or argument's type.
SPREAD_ON_ANOTHER_TYPE = """
query Settings { integrationSettings(tenantId: "acme") { ... on Query { __typename } } }
"""
SPREAD_UNDER_A_UNION = """
query Settings { integrationSettings(tenantId: "acme") { fhir { ... on Query { __typename } } } }
"""
VARIABLE_IN_ANOTHER_TYPES_PLACE = """
mutation Save($input: Int) { updateEhrSettings(tenantId: "acme", input: $input) { __typename } }
"""
ONE_OF_WITHOUT_A_MEMBER = """
mutation Save { updateEhrSettings(tenantId: "acme", input: {}) { __typename } }
"""
NULL_FOR_A_REQUIRED_ARGUMENT = "query Settings { integrationSettings(tenantId: null) { version } }"
# A value of the wrong kind, said in plain words: in a literal, and as a list (whose item
# graphql-core reports with no place to name).
NUMBER_FOR_AN_ID = "query Settings { integrationSettings(tenantId: 5.5) { version } }"
LIST_FOR_AN_ID = 'query Settings { integrationSettings(tenantId: ["acme"]) { version } }'
SCHEMA_NAMES = (
    "EhrSettings", "tenantId", "ID", "IntegrationSettings", "EpicSettingsInput",
    "EhrSettingsInput", "Int", "Query", "FhirSettings", "ConfigurationChange",
    "ReceiveCommunicationVersion",
)  # fmt: skip
CLIENTS_OWN_WORDS = {
    UNSELECTED_UNION: "Field 'ehr' must have a selection of subfields.",
    MISSING_ARGUMENT: "Field 'integrationSettings' is missing a required argument.",
    MISSPELT_FIELD: "Cannot query field 'versoin'.",
    UNKNOWN_INPUT_FIELD: (
        "Argument 'input.epic' of 'updateEhrSettings' has an invalid value: unknown field 'nope'."
    ),
    SELECTION_ON_A_SCALAR: "Field 'version' must not have a selection: it has no subfields.",
    UNKNOWN_ARGUMENT: "Unknown argument 'nope' on field 'integrationSettings'.",
    NOT_AN_OBJECT: (
        "Argument 'input' of 'updateEhrSettings' has an invalid value: expected an object."
    ),
    SPREAD_ON_ANOTHER_TYPE: "Fragment cannot be spread here: objects here can never be of type "
    "'Query'.",
    SPREAD_UNDER_A_UNION: "Fragment cannot be spread here: objects here can never be of type "
    "'Query'.",
    VARIABLE_IN_ANOTHER_TYPES_PLACE: (
        "Variable '$input' of type 'Int' is used where another type is expected."
    ),
    ONE_OF_WITHOUT_A_MEMBER: (
        "Argument 'input' of 'updateEhrSettings' must specify exactly one key."
    ),
    NULL_FOR_A_REQUIRED_ARGUMENT: "Argument 'tenantId' of 'integrationSettings' must not be null.",
    NUMBER_FOR_AN_ID: (
        "Argument 'tenantId' of 'integrationSettings' has an invalid value: expected a string or "
        "an integer; a non-string and non-integer value is not allowed."
    ),
    LIST_FOR_AN_ID: (
        "Expected a string or an integer; a non-string and non-integer value is not allowed."
    ),
}


@dataclass(frozen=True)
class Served:
    """A gateway trusting ``issuer`` (not development mode), served on loopback."""

    url: str
    staff: Gateway
    issuer: SignInIssuer

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[SignInIssuer]:
    async with serve_issuer(SignInIssuer(new_key("suggestions-key"))) as issuer:
        yield issuer


async def _served(
    config_dir: Path, database_url: str, issuer: SignInIssuer, **settings: Any
) -> Any:
    config = gateway_config(
        database_url, config_dir, auth_issuer=issuer.url, allow_insecure_http=True, **settings
    )
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        serve_on_loopback(app) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield Served(url, Gateway(client, config, issuer.staff()), issuer)


@pytest.fixture(scope="module")
async def production(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, issuer: SignInIssuer
) -> AsyncIterator[Served]:
    async for served in _served(tmp_path_factory.mktemp("production"), database_url, issuer):
        yield served


@pytest.fixture(scope="module")
async def production_with_introspection(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, issuer: SignInIssuer
) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("introspection")
    async for served in _served(directory, database_url, issuer, introspection=True):
        yield served


def _messages(body: dict[str, Any]) -> list[str]:
    assert body.get("data") is None, body
    return [error["message"] for error in body["errors"]]


def _assert_no_suggestion(messages: list[str], name: str) -> None:
    assert messages
    for message in messages:
        assert "Did you mean" not in message, message
        assert f"'{name}'" not in message, message


@pytest.mark.parametrize(("document", "variables", "name"), MISTAKES)
async def test_outside_development_errors_suggest_no_names(
    production: Served, document: str, variables: dict[str, Any], name: str
) -> None:
    _assert_no_suggestion(_messages(await production.staff.post(document, **variables)), name)


@pytest.mark.parametrize(("document", "variables", "name"), MISTAKES)
async def test_introspection_turned_on_outside_development_does_not_bring_suggestions_back(
    production_with_introspection: Served, document: str, variables: dict[str, Any], name: str
) -> None:
    body = await production_with_introspection.staff.post(document, **variables)
    _assert_no_suggestion(_messages(body), name)


async def test_outside_development_a_subscription_over_websocket_gets_no_suggestion(
    production: Served,
) -> None:
    client = await TransportWsClient.connect(production.ws_url, token=production.issuer.staff())
    try:
        await client.subscribe("1", MISSPELLED_SUBSCRIPTION_FIELD)
        message = await client.receive()
    finally:
        await client.close()
    assert message["type"] == "error" and message["id"] == "1", message
    _assert_no_suggestion(
        [error["message"] for error in message["payload"]], "configurationChanged"
    )


# Enum values are never suggested: the message quotes the value sent, and is rebuilt without it
# (gql.errors), suggestion and all.
SUGGESTED_IN_DEVELOPMENT = [mistake for mistake in MISTAKES if "enum" not in str(mistake.id)]


@pytest.mark.parametrize(("document", "variables", "name"), SUGGESTED_IN_DEVELOPMENT)
async def test_in_development_errors_suggest_the_name_meant(
    gateway: Gateway, document: str, variables: dict[str, Any], name: str
) -> None:
    messages = _messages(await gateway.post(document, **variables))
    assert any("Did you mean" in message and f"'{name}'" in message for message in messages), (
        messages
    )


@pytest.mark.parametrize("document", list(CLIENTS_OWN_WORDS))
async def test_outside_development_errors_name_only_what_the_client_wrote(
    production: Served, document: str
) -> None:
    messages = _messages(await production.staff.post(document))

    written = set(re.findall(r"\w+", document))
    named = {
        name for name in SCHEMA_NAMES for message in messages if re.search(rf"\b{name}\b", message)
    }
    assert not named - written, messages
    assert messages == [CLIENTS_OWN_WORDS[document]]


async def test_in_development_errors_still_name_the_types(gateway: Gateway) -> None:
    messages = _messages(await gateway.post(MISSPELT_FIELD))

    assert messages == [
        "Cannot query field 'versoin' on type 'IntegrationSettings'. Did you mean 'version'?"
    ]


def _names_of_the_schema(messages: list[str], document: str) -> set[str]:
    written = set(re.findall(r"\w+", document))
    named = {name for name in SCHEMA_NAMES for m in messages if re.search(rf"\b{name}\b", m)}
    return named - written


async def test_outside_development_a_get_request_names_only_what_the_client_wrote(
    production: Served,
) -> None:
    response = await production.staff.client.get(
        "/graphql",
        params={"query": SPREAD_ON_ANOTHER_TYPE},
        headers={"authorization": f"Bearer {production.staff.token}"},
    )

    messages = _messages(response.json())
    assert messages == [CLIENTS_OWN_WORDS[SPREAD_ON_ANOTHER_TYPE]]


async def test_outside_development_a_persisted_query_registered_names_only_what_it_wrote(
    production: Served,
) -> None:
    digest = hashlib.sha256(SPREAD_ON_ANOTHER_TYPE.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    response = await production.staff.client.post(
        "/graphql",
        json={"query": SPREAD_ON_ANOTHER_TYPE, "extensions": extensions},
        headers={"authorization": f"Bearer {production.staff.token}"},
    )

    messages = _messages(response.json())
    assert messages == [CLIENTS_OWN_WORDS[SPREAD_ON_ANOTHER_TYPE]]


SUBSCRIPTION_SPREAD_ON_ANOTHER_TYPE = """
subscription Changes { configurationChanged(tenantId: "acme") { ... on Query { __typename } } }
"""


@pytest.mark.parametrize("client", [TransportWsClient, LegacyWsClient])
async def test_outside_development_a_refused_subscription_names_only_what_the_client_wrote(
    production: Served, client: type[TransportWsClient]
) -> None:
    connection = await client.connect(production.ws_url, token=production.issuer.staff())
    try:
        await connection.subscribe("1", SUBSCRIPTION_SPREAD_ON_ANOTHER_TYPE)
        message = await connection.receive()
    finally:
        await connection.close()

    assert message["type"] == "error", message
    payload = message["payload"]
    messages = [error["message"] for error in (payload if isinstance(payload, list) else [payload])]
    assert not _names_of_the_schema(messages, SUBSCRIPTION_SPREAD_ON_ANOTHER_TYPE), messages
    assert messages == [CLIENTS_OWN_WORDS[SPREAD_ON_ANOTHER_TYPE]]


SAVE_EHR = """
mutation Save($input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: "acme", input: $input) { __typename }
}
"""


async def test_outside_development_an_enum_inside_an_input_variable_is_not_named(
    production: Served,
) -> None:
    body = await production.staff.post(SAVE_EHR, input={"epic": {"receiveCommunicationVersion": 5}})

    messages = _messages(body)
    assert not _names_of_the_schema(messages, SAVE_EHR), messages
    assert messages == [
        "Variable '$input' has an invalid value at 'epic.receiveCommunicationVersion': expected "
        "an enum value; a non-string value is not allowed."
    ]


# Each leaves out required input fields ("name", "baseUrl", "environment"; a header's "value")
# that the client never wrote: outside development the error says one is missing, not which.
CONNECTION_LEFT_EMPTY = """
mutation CreateWithoutAConnection {
  createExternalGateway(tenantId: "acme", connection: {}) { __typename }
}
"""
CREATE_EXTERNAL_GATEWAY = """
mutation Create($connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: "acme", connection: $connection) { __typename }
}
"""
INPUT_FIELDS_LEFT_OUT = ("name", "baseUrl", "environment", "value")


def _input_fields_named(messages: list[str]) -> set[str]:
    return {name for name in INPUT_FIELDS_LEFT_OUT for m in messages if f"'{name}'" in m}


async def test_outside_development_a_required_input_field_left_out_of_a_literal_is_not_named(
    production: Served,
) -> None:
    messages = _messages(await production.staff.post(CONNECTION_LEFT_EMPTY))

    assert not _input_fields_named(messages), messages
    assert set(messages) == {
        "Argument 'connection' of 'createExternalGateway' has an invalid value: a required "
        "field is missing."
    }


async def test_outside_development_a_required_input_field_left_out_of_a_variable_is_not_named(
    production: Served,
) -> None:
    empty = _messages(await production.staff.post(CREATE_EXTERNAL_GATEWAY, connection={}))
    nested = _messages(
        await production.staff.post(
            UPDATE_HEADERS, input={"athena": {"customHeaders": [{"name": "X-Team"}]}}
        )
    )

    assert not _input_fields_named(empty), empty
    assert set(empty) == {
        "Variable '$connection' has an invalid value: a required field is missing."
    }
    # The header's "name" is the client's own; the "value" it left out is not named.
    assert nested == [
        "Variable '$input' has an invalid value at 'athena.customHeaders[0]': a required field "
        "is missing."
    ]


async def test_in_development_a_required_input_field_left_out_is_named(gateway: Gateway) -> None:
    messages = _messages(await gateway.post(CONNECTION_LEFT_EMPTY))

    assert any("to include required field 'baseUrl'" in message for message in messages), messages
