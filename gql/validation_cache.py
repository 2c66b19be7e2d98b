"""Validation of each distinct document text once, for every request that sends it again.

Strawberry's ValidationCache keys its cache by the parsed document, and a parsed document's hash
walks the whole tree on every request: for a 60-field settings query that is a fair share of a
request's time. The text the client sent identifies the document as well, and hashes at once.

The cache is bounded by bytes: an entry keeps its text, and a refused document's errors point at
its AST nodes, which keep the whole parsed document alive (megabytes for one near the token
limit).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterator
from contextlib import suppress
from dataclasses import dataclass

from cachetools import LRUCache
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gql.documents import ENTRY_BYTES, document_bytes

MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Validated:
    errors: list[GraphQLError]
    size: int


def _size(validated: _Validated) -> int:
    return validated.size


_results: LRUCache[Hashable, _Validated] = LRUCache(MAX_BYTES, getsizeof=_size)


class ValidationByText(SchemaExtension):
    """Validates through a cache keyed by the schema, the document's text and the rules."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if execution.query is not None and document is not None:
            schema = execution.schema._schema
            key = (id(schema), execution.query, execution.validation_rules)
            validated = _results.get(key)
            if validated is None:
                errors = validate_document(schema, document, execution.validation_rules)
                size = (
                    document_bytes(document, execution.query)
                    if errors
                    else ENTRY_BYTES + sys.getsizeof(execution.query)
                )
                validated = _Validated(errors, size)
                with suppress(ValueError):  # larger than the whole budget: not kept
                    _results[key] = validated
            execution.pre_execution_errors = validated.errors
        yield
