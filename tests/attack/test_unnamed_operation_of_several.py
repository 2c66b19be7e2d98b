"""Found while attacking error paths: a POSTed document with several operations and no
``operationName`` runs its first operation, where the GraphQL spec (GetOperation) requires an
error ("Must provide operation name if query contains multiple operations"). A client that
bundles a mutation with the query it meant to send (a code generator's file of documents, a
pasted GraphiQL tab) stores a version it never named; and the layers that look the operation up
by name (the request's metrics label and cacheability in gql/operation_record.py) find none, so
the stored write is counted as ``refused``."""

from __future__ import annotations

from tests.conftest import Gateway

MUTATION_FIRST = """
mutation Select { selectEhrProvider(tenantId: "unnamed-op", provider: EPIC) { __typename } }
query Read { integrationSettings(tenantId: "unnamed-op") { version } }
"""
READ = 'query Read { integrationSettings(tenantId: "unnamed-op") { version } }'


async def test_several_operations_without_an_operation_name_run_none(gateway: Gateway) -> None:
    body = await gateway.post(MUTATION_FIRST)

    assert body.get("data") is None, body
    assert body["errors"], body
    assert (await gateway.execute(READ))["integrationSettings"] is None
