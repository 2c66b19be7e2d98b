"""The README's GraphQL examples paste and run as shown: each ```graphql block is one document
that is valid against the schema (GraphiQL runs a document with one anonymous operation, or
several named ones), and, in the order the README gives them, they run against a gateway."""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    OperationDefinitionNode,
    OperationType,
    parse,
    validate,
)

from ehr_gateway.gql.schema import gateway_schema
from tests.conftest import gateway_config, open_gateway

README = Path(__file__).parents[1] / "README.md"

# A fenced block, also indented inside a list item.
BLOCK = re.compile(r"^( *)```graphql\n(.*?)^\1```", re.MULTILINE | re.DOTALL)

# Root fields that call an EHR or an identity provider at the README's made-up addresses: a
# test reaches only servers it starts on loopback, so these are validated but not run.
CALLS_OUT = {
    "testExternalGatewayConnection",
    "testOAuthToken",
    "discoverJku",
    "refreshJku",
    "adoptObservedJku",
}


# The promotion example exports a sandbox tenant's settings: the README's reader has one.
SANDBOX = """
mutation ConfigureSandbox {
  selectEhrProvider(tenantId: "acme-sandbox", provider: EPIC) { __typename }
}
"""


def examples() -> list[tuple[int, str]]:
    """Each block's text, with the README line it starts on."""
    text = README.read_text()
    return [
        (text[: match.start()].count("\n") + 1, textwrap.dedent(match[2]))
        for match in BLOCK.finditer(text)
    ]


def operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def root_fields(operation: OperationDefinitionNode) -> set[str]:
    return {s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)}


def test_the_readme_has_examples() -> None:
    assert len(examples()) >= 10


@pytest.mark.parametrize(
    "example", [pytest.param(text, id=f"README line {line}") for line, text in examples()]
)
def test_each_example_is_one_valid_document(example: str) -> None:
    document = parse(example)
    # Lone anonymous operations, unique names, declared variables, fields that exist, ...
    errors = validate(gateway_schema()._schema, document)
    assert errors == [], [error.message for error in errors]
    found = operations(document)
    assert found, "no operation"
    assert sum(operation.name is None for operation in found) <= 1


def typenames(value: Any) -> set[str]:
    if isinstance(value, dict):
        own = {value["__typename"]} if isinstance(value.get("__typename"), str) else set()
        return own.union(*(typenames(member) for member in value.values()))
    if isinstance(value, list):
        return set().union(*(typenames(member) for member in value))
    return set()


async def test_the_examples_run_in_order(database_url: str, tmp_path: Path) -> None:
    # Their own database: the examples name tenant "acme" and its versions as a first session
    # has them.
    config = gateway_config(database_url, tmp_path).model_copy(
        update={"database": f"readme_{uuid.uuid4().hex[:8]}"}
    )
    ran: list[str] = []
    exported: Any = None
    async for gateway in open_gateway(config):
        await gateway.execute(SANDBOX)
        for _, example in examples():
            for operation in operations(parse(example)):
                fields = root_fields(operation)
                if operation.operation == OperationType.SUBSCRIPTION or fields & CALLS_OUT:
                    continue
                name = operation.name.value if operation.name else None
                variables = {"doc": exported} if name == "PreviewImport" else {}
                response = await gateway.client.post(
                    "/graphql",
                    content=json.dumps(
                        {"query": example, "operationName": name, "variables": variables}
                    ),
                    headers={
                        "content-type": "application/json",
                        "authorization": f"Bearer {gateway.token}",
                    },
                )
                body = response.json()
                assert "errors" not in body, (example, body)
                assert response.status_code == 200, (example, body)
                # Every version an example names is the one a first session has reached.
                assert "VersionConflict" not in typenames(body["data"]), (example, body)
                if "exportSettings" in fields:
                    exported = body["data"]["exportSettings"]
                ran.append(name or ", ".join(sorted(fields)))
    assert "PreviewImport" in ran
    assert len(ran) >= 10
