"""Outside development, errors name only what the client wrote (tests/gql/test_field_suggestions
.py): a required argument left out is not named. A required input field left out still is:
"Expected value of another type to include required field 'value'." tells a client probing
without introspection the schema's input field names, one error at a time, by literal or by
variable."""

from __future__ import annotations

import re

from tests.gql.test_field_suggestions import Served, issuer, production  # noqa: F401

CONNECTION_LEFT_EMPTY = """
mutation Create { createExternalGateway(tenantId: "acme", connection: {}) { __typename } }
"""
CONNECTION_VARIABLE = """
mutation Create($connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: "acme", connection: $connection) { __typename }
}
"""
HEADER_WITHOUT_ITS_VALUE = """
mutation Save($input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: "acme", input: $input) { __typename }
}
"""
# Input field names of the schema that the documents and variables above never write.
UNWRITTEN = ("name", "baseUrl", "environment", "value")


def _named(messages: list[str]) -> set[str]:
    return {name for name in UNWRITTEN for m in messages if re.search(rf"'{name}'", m)}


async def test_a_required_input_field_left_out_of_a_literal_is_not_named(
    production: Served,  # noqa: F811
) -> None:
    body = await production.staff.post(CONNECTION_LEFT_EMPTY)

    messages = [error["message"] for error in body["errors"]]
    assert not _named(messages), messages


async def test_a_required_input_field_left_out_of_a_variable_is_not_named(
    production: Served,  # noqa: F811
) -> None:
    empty = await production.staff.post(CONNECTION_VARIABLE, connection={})
    nested = await production.staff.post(
        HEADER_WITHOUT_ITS_VALUE, input={"athena": {"customHeaders": [{"name": "x"}]}}
    )

    left_out = [error["message"] for error in empty["errors"]]
    assert not _named(left_out), left_out
    # The nested variable writes "name" itself: only the "value" it left out must not be named.
    nested_messages = [error["message"] for error in nested["errors"]]
    assert "value" not in _named(nested_messages), nested_messages
