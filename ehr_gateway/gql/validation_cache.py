"""Validation of each distinct document text once, for every request that sends it again.

Strawberry's ValidationCache keys its cache by the parsed document, and a parsed document's hash
walks the whole tree on every request: for a 60-field settings query that is a fair share of a
request's time. The text the client sent identifies the document as well, and hashes at once.

A document is first held to the selection limits (gql.selection_limits), which bound the work
validation would do; one past them is refused without being validated.

The cache is bounded by bytes: an entry keeps its text, and a refused document's errors point at
its AST nodes, which keep the whole parsed document alive (megabytes for one near the token
limit).
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass

from cachetools import LRUCache
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from ehr_gateway.gql.documents import ENTRY_BYTES, document_bytes
from ehr_gateway.gql.selection_limits import SelectionLimits, exceeded

MAX_BYTES = 16 * 1024 * 1024
# The rules Strawberry's own validation adds to the schema's (strawberry.schema.schema
# .validate_document, which cannot be asked to hide suggestions).
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


@dataclass(frozen=True, slots=True)
class _Validated:
    errors: list[GraphQLError]
    size: int


def _size(validated: _Validated) -> int:
    return validated.size


_results: LRUCache[Hashable, _Validated] = LRUCache(MAX_BYTES, getsizeof=_size)


class ValidationByText(SchemaExtension):
    """Validates through a cache keyed by the schema, the document's text, the rules and how
    this extension was set up."""

    def __init__(self, limits: SelectionLimits, *, hide_suggestions: bool) -> None:
        super().__init__()
        self._limits = limits
        self._hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        # Errors already found (a document refused by name, see gql.persisted_documents) or
        # none to find (a trusted document, validated at startup): nothing to validate.
        if (
            execution.query is not None
            and document is not None
            and execution.pre_execution_errors is None
        ):
            schema = execution.schema._schema
            key = (
                id(schema), execution.query, execution.validation_rules,
                self._limits, self._hide_suggestions,
            )  # fmt: skip
            validated = _results.get(key)
            if validated is None:
                errors = validate_bounded(
                    schema, document, execution.validation_rules, self._limits,
                    hide_suggestions=self._hide_suggestions,
                )  # fmt: skip
                size = (
                    document_bytes(document, execution.query)
                    if errors
                    else ENTRY_BYTES + sys.getsizeof(execution.query)
                )
                validated = _Validated(errors, size)
                with suppress(ValueError):  # larger than the whole budget: not kept
                    _results[key] = validated
            # Copies: the errors leave through process_errors (gql.error_policy), which rewrites
            # each message without its values; the cached ones must stay as validation wrote
            # them, or the next request sending this text gets them rewritten a second time.
            execution.pre_execution_errors = [copy_error(error) for error in validated.errors]
        yield


def copy_error(error: GraphQLError) -> GraphQLError:
    """A new ``error`` with the same message, location and extensions, for one request to
    change."""
    return GraphQLError(
        error.message, error.nodes, error.source, error.positions, error.path,
        error.original_error, dict(error.extensions) if error.extensions else None,
    )  # fmt: skip


def validate_bounded(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: Iterable[type[ASTValidationRule]],
    limits: SelectionLimits,
    *,
    hide_suggestions: bool,
) -> list[GraphQLError]:
    """The errors in ``document``: the selection limit it passes, if any, else what validation
    by ``rules`` (and Strawberry's own) finds."""
    error = exceeded(document, limits)
    if error is not None:
        return [error]
    return validate(
        schema, document, (*rules, *_STRAWBERRY_RULES), hide_suggestions=hide_suggestions
    )
