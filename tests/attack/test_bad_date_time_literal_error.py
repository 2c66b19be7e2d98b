"""Attack: a DateTime written as a literal that does not parse (``tenants(changedSince: "hello")``,
a number, a 30 February).

graphql-core reports the scalar's own error without a node, and the gateway's rewrite that takes
submitted values out of messages (gql.errors.without_values) finds nothing it keeps in Strawberry's
wording ("Value cannot represent a DateTime: ..."): the client is told ``"."``, with no location
and no argument, so it cannot tell which of its values was refused. The same value sent as a
variable names the variable."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway

LITERALS = ['"hello"', "5", '"2024-02-30T00:00:00Z"']


@pytest.mark.parametrize("literal", LITERALS)
async def test_a_bad_date_time_literal_is_refused_naming_its_argument(
    gateway: Gateway, literal: str
) -> None:
    document = f"query Changed {{ tenants(changedSince: {literal}) {{ items {{ tenantId }} }} }}"

    body = await gateway.post(document)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "changedSince" in error["message"], error
    assert error.get("locations"), error
