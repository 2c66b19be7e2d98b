"""Attack on last session's fix "errors outside development name no schema types or arguments"
(tests/gql/test_field_suggestions.py): with introspection off, several validation messages still
name a type the client never wrote, so a client maps the closed schema one request at a time.

- a fragment spread on a type the field cannot return names the field's own type
  ("objects of type 'IntegrationSettings' can never be of type 'Query'"): spreading
  ``... on Query`` under each field tells its return type, over HTTP (POST and GET, persisted
  queries too) and over WebSocket, both protocols;
- a variable used where another type is expected names the argument's type, input types
  included ("expecting type 'EhrSettingsInput!'");
- a oneOf input literal with no member names the input type
  ("OneOf Input Object 'EhrSettingsInput' must specify exactly one key");
- a null literal for a required argument names its type ("non-null type 'ID!'");
- an enum field inside an input variable, given a non-string value, names the enum type
  ("Enum 'ReceiveCommunicationVersion' cannot represent non-string value: 5").
"""

from __future__ import annotations

import re

import pytest

from tests.gql.test_field_suggestions import Served
from tests.processes import LegacyWsClient, TransportWsClient

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
SUBSCRIPTION_SPREAD_ON_ANOTHER_TYPE = """
subscription Changes { configurationChanged(tenantId: "acme") { ... on Query { __typename } } }
"""

# Each document, and the schema's name for what it probes, which the document never writes.
PROBES = [
    pytest.param(SPREAD_ON_ANOTHER_TYPE, "IntegrationSettings", id="spread-return-type"),
    pytest.param(SPREAD_UNDER_A_UNION, "FhirSettings", id="spread-union-type"),
    pytest.param(VARIABLE_IN_ANOTHER_TYPES_PLACE, "EhrSettingsInput", id="variable-position"),
    pytest.param(ONE_OF_WITHOUT_A_MEMBER, "EhrSettingsInput", id="one-of-literal"),
    pytest.param(NULL_FOR_A_REQUIRED_ARGUMENT, "ID", id="null-literal"),
]


def _names_it(messages: list[str], name: str) -> list[str]:
    return [message for message in messages if re.search(rf"\b{name}\b", message)]


@pytest.mark.parametrize(("document", "hidden"), PROBES)
async def test_outside_development_a_refused_document_names_no_type_it_did_not_write(
    production: Served, document: str, hidden: str
) -> None:
    assert hidden not in re.findall(r"\w+", document)

    body = await production.staff.post(document)

    messages = [error["message"] for error in body["errors"]]
    assert messages
    assert _names_it(messages, hidden) == [], messages


async def test_outside_development_a_get_request_names_no_type_it_did_not_write(
    production: Served,
) -> None:
    response = await production.staff.client.get(
        "/graphql",
        params={"query": SPREAD_ON_ANOTHER_TYPE},
        headers={"authorization": f"Bearer {production.staff.token}"},
    )

    messages = [error["message"] for error in response.json()["errors"]]
    assert _names_it(messages, "IntegrationSettings") == [], messages


@pytest.mark.parametrize("client", [TransportWsClient, LegacyWsClient])
async def test_outside_development_a_refused_subscription_names_no_type_it_did_not_write(
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
    errors = payload if isinstance(payload, list) else [payload]
    messages = [error["message"] for error in errors]
    assert _names_it(messages, "ConfigurationChange") == [], messages


UPDATE_EHR = """
mutation Save($input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: "acme", input: $input) { __typename }
}
"""


async def test_outside_development_an_enum_inside_an_input_variable_is_not_named(
    production: Served,
) -> None:
    body = await production.staff.post(
        UPDATE_EHR, input={"epic": {"receiveCommunicationVersion": 5}}
    )

    messages = [error["message"] for error in body["errors"]]
    assert messages
    assert _names_it(messages, "ReceiveCommunicationVersion") == [], messages
