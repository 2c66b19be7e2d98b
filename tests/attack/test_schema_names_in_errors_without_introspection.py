"""Attack: a caller of a gateway with introspection off maps the schema from validation errors.

With introspection off the gateway promises errors that name no schema element the client did
not name itself (gql.execution.ExecutionWithoutSuggestions; README: no "Did you mean" in any
error, and possibleTypes.json is not served "so a deployment with introspection off reveals no
type names"). graphql-core's validation messages still name them: the type of a field the client
selected without subfields (``EhrSettings``), the object type a misspelt field was looked up on,
a required argument the client left out with its type (``Query.integrationSettings(tenantId:)``
of type ``ID!``), the input object type of an argument, and a "Did you mean" pointing at a
selection. Guessing one field name at a time, a caller recovers every type and every required
argument."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Gateway, gateway_config, open_gateway

# Each document names no type, and the second no argument: whatever type or argument name an
# error mentions came from the schema.
UNSELECTED_UNION = 'query Ehr { integrationSettings(tenantId: "acme") { ehr } }'
MISSING_ARGUMENT = "query Settings { integrationSettings { version } }"
MISSPELT_FIELD = 'query Settings { integrationSettings(tenantId: "acme") { versoin } }'
UNKNOWN_INPUT_FIELD = """
mutation Save { updateEhrSettings(tenantId: "acme", input: {epic: {nope: "x"}}) { __typename } }
"""
SCHEMA_NAMES = ("EhrSettings", "tenantId", "ID!", "IntegrationSettings", "EpicSettingsInput")


@pytest.fixture
async def closed_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    config = gateway_config(database_url, tmp_path, introspection=False)
    async for opened in open_gateway(config):
        yield opened


@pytest.mark.parametrize(
    "document", [UNSELECTED_UNION, MISSING_ARGUMENT, MISSPELT_FIELD, UNKNOWN_INPUT_FIELD]
)
async def test_errors_name_no_schema_element_the_client_did_not_name(
    closed_gateway: Gateway, document: str
) -> None:
    body = await closed_gateway.post(document)

    assert body["data"] is None
    messages = [error["message"] for error in body["errors"]]
    leaked = [name for name in SCHEMA_NAMES for message in messages if name in message]
    assert not leaked, messages
    assert not any("Did you mean" in message for message in messages), messages
