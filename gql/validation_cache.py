"""Validation of each distinct document text once, for every request that sends it again.

Strawberry's ValidationCache keys its cache by the parsed document, and a parsed document's hash
walks the whole tree on every request: for a 60-field settings query that is a fair share of a
request's time. The text the client sent identifies the document as well, and hashes at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAXSIZE = 512
_results: OrderedDict[Hashable, list[GraphQLError]] = OrderedDict()


class ValidationByText(SchemaExtension):
    """Validates through a cache keyed by the schema, the document's text and the rules."""

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        if execution.query is not None and document is not None:
            schema = execution.schema._schema
            key = (id(schema), execution.query, execution.validation_rules)
            errors = _results.get(key)
            if errors is None:
                errors = validate_document(schema, document, execution.validation_rules)
                _results[key] = errors
                if len(_results) > MAXSIZE:
                    _results.popitem(last=False)
            execution.pre_execution_errors = errors
        yield
