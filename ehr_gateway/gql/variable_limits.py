"""How long a list a request's variables may hold, checked before graphql-core coerces them.

graphql-core coerces every item of a variable's list (an input object's every field), and
Strawberry then converts each into its input class, before any rule of the schema can say the
list is too long: an editor's 256 KB ``updateHeaderSettings`` with 9,000 headers was coerced and
converted in full before the settings model answered TOO_MANY (at most 50), and a viewer's
``configurationChanges`` could name 60,000 tenants before its cap of 1,000 applied. So the raw
variables are walked first (a walk with a stack: the JSON is at most 64 levels deep, but nothing
here need rely on it), and a list longer than any argument accepts refuses the request as
variables that do not fit refuse it, before anything is coerced.

Every JSON array in a declared variable counts, a JSON scalar's too (importSettings' document,
whose largest list is a mapping of 500 entries). Each list is bounded, not their sum: a
document may name several list variables (nine aliased saves of 1,000 headers fill a 256 KB
body), which the body limit alone bounds. A list written in the document itself is bounded by
the document's token limit already (each item is a token at least), well under this one.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, VariableDefinitionNode
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from ehr_gateway.resolvers.changes import MAX_TENANTS_PER_SUBSCRIPTION

# The longest list any argument accepts: configurationChanges' tenantIds (the settings' own
# lists stop sooner: 500 mapping entries, 100 category codes, 50 headers).
MAX_LIST_ITEMS = MAX_TENANTS_PER_SUBSCRIPTION

# A key that can name an input field: only such keys are shown in where a list was found.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


class ListsBounded(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, refusing variables that hold a list longer than
    MAX_LIST_ITEMS before they are coerced."""

    @classmethod
    def build(
        cls,
        schema: Any,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[GraphQLError] | Executor[Any]:
        if raw_variable_values:
            errors = long_lists(document, raw_variable_values)
            if errors:
                return errors
        return super().build(
            schema, document, root_value, context_value, raw_variable_values, *args, **kwargs
        )


def long_lists(document: DocumentNode, variables: dict[str, Any]) -> list[GraphQLError]:
    """An error for each variable the document declares whose value holds a list of more than
    MAX_LIST_ITEMS items (the first such list in it), naming the variable and where the list
    is. Variables the document does not declare are never coerced, and are let be."""
    declared = _declared(document)
    errors = []
    for name, value in variables.items():
        definition = declared.get(name)
        if definition is None or not isinstance(value, (list, dict)):
            continue
        found = _first_long_list(value)
        if found is not None:
            where, length = found
            at = f" at '{where}'" if where else ""
            errors.append(
                GraphQLError(
                    f"Variable '${name}' has a list of {length} items{at}: a list may hold at "
                    f"most {MAX_LIST_ITEMS} items.",
                    definition,
                    extensions={"limit": MAX_LIST_ITEMS},
                )
            )
    return errors


def _declared(document: DocumentNode) -> dict[str, VariableDefinitionNode]:
    return {
        each.variable.name.value: each
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        for each in definition.variable_definitions or ()
    }


def _first_long_list(value: list[Any] | dict[str, Any]) -> tuple[str, int] | None:
    """Where the first list longer than MAX_LIST_ITEMS is in ``value`` ("a.b[3].c"), and its
    length; None when there is none. A list is measured before its items are looked at."""
    # Each pending value with where it is: (the parent's place, this key or index), spelled
    # out only for the list refused.
    pending: list[tuple[_Place, Any]] = [(None, value)]
    while pending:
        place, current = pending.pop()
        if isinstance(current, list):
            if len(current) > MAX_LIST_ITEMS:
                return _spelled(place), len(current)
            pending.extend(
                ((place, index), item)
                for index, item in enumerate(current)
                if isinstance(item, (list, dict))
            )
        elif isinstance(current, dict):
            pending.extend(
                ((place, key), item)
                for key, item in current.items()
                if isinstance(item, (list, dict))
            )
    return None


_Place = tuple["_Place", str | int] | None


def _spelled(place: _Place) -> str:
    parts: list[str] = []
    while place is not None:
        place, step = place
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            # A key that cannot name an input field is not repeated to the client.
            parts.append(f".{step if _NAME.fullmatch(step) else '…'}")
    return "".join(reversed(parts)).lstrip(".")
