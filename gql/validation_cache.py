"""Validation of each distinct document text once, for every request that sends it again.

Strawberry's ValidationCache keys its cache by the parsed document, and a parsed document's hash
walks the whole tree on every request: for a 60-field settings query that is a fair share of a
request's time. The text the client sent identifies the document as well, and hashes at once.

A document is first held to the selection limits (gql.selection_limits), which bound the work
validation would do; one past them is refused without being validated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gql.selection_limits import SelectionLimits, exceeded

MAXSIZE = 512
_results: OrderedDict[Hashable, list[GraphQLError]] = OrderedDict()
# The rules Strawberry's own validation adds to the schema's (strawberry.schema.schema
# .validate_document, which cannot be asked to hide suggestions).
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


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
        if execution.query is not None and document is not None:
            schema = execution.schema._schema
            key = (
                id(schema), execution.query, execution.validation_rules,
                self._limits, self._hide_suggestions,
            )  # fmt: skip
            errors = _results.get(key)
            if errors is None:
                errors = validate_bounded(
                    schema, document, execution.validation_rules, self._limits,
                    hide_suggestions=self._hide_suggestions,
                )  # fmt: skip
                _results[key] = errors
                if len(_results) > MAXSIZE:
                    _results.popitem(last=False)
            execution.pre_execution_errors = errors
        yield


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
