"""Found while attacking the error-message fix over GET: a query sent as a GET request has its
request errors rewritten twice (gql/errors.py's ``without_values`` runs on its own output), so a
literal of the wrong type reads "Argument 'first' of 'tenants' has an invalid value: Argument
'first' of 'tenants' has an invalid value: expected Int: expected Int; Int cannot represent
non-integer value." where the same document POSTed reads once. Clients that show or match the
message (the console, Apollo's error links) get two different texts for one mistake."""

from __future__ import annotations

from tests.conftest import Gateway

WRONG_LITERAL = 'query Tenants { tenants(first: "ten") { items { tenantId } } }'


async def test_a_get_request_is_told_what_a_post_is_told(gateway: Gateway) -> None:
    posted = await gateway.post(WRONG_LITERAL)
    got = await gateway.client.get(
        "/graphql",
        params={"query": WRONG_LITERAL},
        headers={"authorization": f"Bearer {gateway.token}"},
    )

    assert got.json()["errors"][0]["message"] == posted["errors"][0]["message"]
