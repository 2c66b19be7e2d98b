"""``@skip(if: $s)`` and ``@include(if: $s)`` with ``$s: Boolean = false`` sent as an explicit
null: validation lets a nullable variable with a default into the non-null ``if``, and
graphql-core refuses the null only when it collects the selections the directive is on. On a
root field that is before anything runs, and the request is refused; below the root it is in
the middle of completing a field, which graphql-core reports as that field's error, and the
gateway, seeing an error no resolver raised, as an internal one with a stack trace in the log.
So the conditions are read here, once the variables are coerced and before anything runs, and
a null one refuses the request with graphql-core's own words wherever it is in the document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    DirectiveNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    Node,
    VariableNode,
    Visitor,
    visit,
)
from graphql.execution import Executor
from graphql.execution.values import VariableValues, get_argument_values
from graphql.language import VisitorAction

from ehr_gateway.gql.variable_limits import ListsBounded

_CONDITIONS = {d.name: d for d in (GraphQLSkipDirective, GraphQLIncludeDirective)}


class ConditionsChecked(ListsBounded):
    """graphql-core's execution (its variables' lists bounded), refusing before it runs a
    request whose ``@skip`` or ``@include`` condition is a variable sent as null, as it refuses
    one on a root field."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return built
        errors = null_conditions(
            [built.operation, *(each.definition for each in built.fragments.values())],
            built.variable_values,
            hide_suggestions=built.hide_suggestions,
        )
        return errors or built


def null_conditions(
    definitions: Iterable[Node], variables: VariableValues, *, hide_suggestions: bool
) -> list[GraphQLError]:
    """graphql-core's error for each ``@skip``/``@include`` in ``definitions`` whose condition
    is a variable ``variables`` holds as null."""
    nulls = {name for name, value in variables.coerced.items() if value is None}
    if not nulls:  # nearly always: no document need be walked
        return []
    finder = _NullConditions(nulls, variables, hide_suggestions)
    for definition in definitions:
        visit(definition, finder)
    return list(finder.errors.values())


class _NullConditions(Visitor):
    def __init__(self, nulls: set[str], variables: VariableValues, hide: bool) -> None:
        super().__init__()
        self._nulls, self._variables, self._hide = nulls, variables, hide
        self.errors: dict[str, GraphQLError] = {}

    def enter_directive(self, node: DirectiveNode, *_: object) -> VisitorAction:
        directive = _CONDITIONS.get(node.name.value)
        if directive is not None and any(
            isinstance(argument.value, VariableNode) and argument.value.name.value in self._nulls
            for argument in node.arguments or ()
        ):
            try:  # as graphql-core reads a condition when it collects fields
                get_argument_values(directive, node, self._variables, hide_suggestions=self._hide)
            except GraphQLError as refused:
                self.errors.setdefault(refused.message, refused)
        return None
