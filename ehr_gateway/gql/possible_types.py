"""The schema's unions and interfaces with their member types (`possibleTypes`): normalised caches
(Apollo Client's InMemoryCache, urql's graphcache) need it to match fragments on a union or an
interface against the objects they have cached."""

from __future__ import annotations

import json

from graphql import GraphQLSchema, is_abstract_type

from ehr_gateway.gql.schema import schema as gateway_schema


def possible_types(schema: GraphQLSchema) -> dict[str, list[str]]:
    """Each union and interface, and the object types that may stand for it, by name."""
    return {
        name: sorted(member.name for member in schema.get_possible_types(kind))
        for name, kind in sorted(schema.type_map.items())
        if is_abstract_type(kind) and not name.startswith("__")
    }


def possible_types_json() -> str:
    """possibleTypes.json, as committed next to schema.graphql."""
    return json.dumps(possible_types(gateway_schema._schema), indent=2) + "\n"
