"""Reads of a tenant's settings written straight to JSON-ready values by a plan compiled once
per validated document and operation, instead of graphql-core resolving and completing every
field (and Strawberry converting every stored pydantic model into its GraphQL type first).

Only the value of a root ``integrationSettings`` field of a query is compiled. The root field
itself still runs through graphql-core and Strawberry: its arguments are coerced, its permission
is checked (``needs``), its read is recorded, errors at the root are located as ever. What the
plan replaces is the completion of the IntegrationSettings it returned, and only where every
field selected below it is one the compiler positively recognises:

- a field without a resolver, arguments or extensions of its own, read as the default resolver
  reads it (an attribute of the stored model, or a value the GraphQL type adds, a block's id);
- a field whose resolver only looks a value up in the stored settings
  (``settings_types.STORED_VALUES``), the same function the resolver calls;
- ``__typename``; unions whose members are stored models; lists; scalars and enums, serialised
  by the schema's own types.

Anything else (a field that reads the database, as ``observedJku`` does; an interface-typed
field; ``@defer``; a document that turns error propagation off) leaves the whole field to
graphql-core, as does any value the plan would not write exactly as graphql-core would (a null
where the type says non-null, a scalar that fails to serialise): the plan reads only, so the
field is then simply completed again by graphql-core, whose answer (errors, null bubbling) is
the one sent. Fragments, aliases and ``@skip``/``@include`` are resolved at compile time by
graphql-core's own field collection; a plan is kept per value of the variables those directives
name, so the fields collected are the ones graphql-core would collect.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Hashable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLUnionType,
    OperationType,
    Undefined,
    VariableNode,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.language import (
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    visit,
)
from graphql.language.visitor import Visitor
from graphql.pyutils import Path
from graphql.type.scalars import serialize_id, serialize_string

from ehr_gateway.gql.conditions import ConditionsChecked
from ehr_gateway.gql.documents import ENTRY_BYTES
from ehr_gateway.gql.settings_types import STORED_VALUES, IntegrationSettings

MAX_BYTES = 16 * 1024 * 1024
BYTES_PER_STEP = 400  # a compiled field: its closure, cell and tuple, rounded up
_ROOT_FIELD = "integrationSettings"
_CONDITIONS = frozenset({"skip", "include"})
_STR_AS_IT_IS = (serialize_string, serialize_id)

Writer = Callable[..., Any]


class PlanMiss(Exception):
    """A value the plan would not write as graphql-core would: graphql-core completes it."""


class Unsupported(Exception):
    """A selection the compiler does not recognise: the field is left to graphql-core."""


@dataclass(frozen=True, slots=True)
class Plan:
    write: Writer | None  # None: not compiled
    reason: str  # "compiled", or why not
    size: int
    schema: object  # kept, so that the id in the key names this schema for as long as it lives


def _size(plan: Plan) -> int:
    return plan.size


_plans: LRUCache[Hashable, Plan] = LRUCache(MAX_BYTES, getsizeof=_size)
# How reads were completed: "compiled", a reason a plan was not made, or "miss" (a value the plan
# left to graphql-core), for tests and the curious.
outcomes: Counter[str] = Counter()


class CompiledReadsExecution(ConditionsChecked):
    """graphql-core's execution, with the value of a query's ``integrationSettings`` completed
    by a compiled plan where there is one."""

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: list[FieldDetails],
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if (
            path.prev is None
            and info.field_name == _ROOT_FIELD
            and type(result) is IntegrationSettings
            and self.operation.operation == OperationType.QUERY
        ):
            plan = self._plan(return_type, field_details_list)
            if plan.write is not None:
                try:
                    written = plan.write(result)
                except Exception:
                    # The plan only reads: whatever it met (a value it would write otherwise,
                    # a lookup that raised), graphql-core completes the field from the start,
                    # and any error is located, and nulls bubble, as they always do.
                    outcomes["miss"] += 1
                else:
                    outcomes["compiled"] += 1
                    return written
            else:
                outcomes[plan.reason] += 1
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, return_type: GraphQLObjectType, field_details_list: list[FieldDetails]) -> Plan:
        operation = self.operation
        source = operation.loc.source.body if operation.loc is not None else None
        conditions = tuple(
            self.variable_values.coerced.get(name) for name in _condition_variables(self, source)
        )
        key = (
            id(self.schema), source, operation.loc.start if operation.loc else None,
            tuple(_start(details) for details in field_details_list), conditions,
            self.hide_suggestions,
        )  # fmt: skip
        plan = _plans.get(key)
        if plan is not None and plan.schema is self.schema:
            return plan
        compiler = Compiler(self)
        try:
            if source is None:
                raise Unsupported("document without locations")
            if not self.error_propagation:
                raise Unsupported("error propagation disabled")
            if self.middleware_manager is not None and self.middleware_manager.middlewares:
                raise Unsupported("field middleware")
            write = compiler.object_writer(return_type, field_details_list, root=True)
            plan = Plan(write, "compiled", 0, self.schema)
        except Unsupported as why:
            plan = Plan(None, str(why), 0, self.schema)
        size = sys.getsizeof(source or "") + BYTES_PER_STEP * (compiler.steps + 1)
        plan = Plan(plan.write, plan.reason, size, self.schema)
        with suppress(ValueError):  # larger than the whole budget: not kept
            _plans[key] = plan
        return plan


class CompiledReadsWithoutSuggestions(CompiledReadsExecution):
    """As CompiledReadsExecution, with request errors that name no schema element the client
    did not name itself (see gql.execution.ExecutionWithoutSuggestions)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})


def _start(details: FieldDetails) -> int | None:
    return details.node.loc.start if details.node.loc is not None else None


@dataclass(frozen=True, slots=True)
class _Conditions:
    names: tuple[str, ...]
    size: int  # the text it is kept by, mostly


def _conditions_size(conditions: _Conditions) -> int:
    return conditions.size


# Bounded by bytes, as the plans are: the key holds the document's text.
_condition_names: LRUCache[Hashable, _Conditions] = LRUCache(
    MAX_BYTES // 4, getsizeof=_conditions_size
)


def _condition_variables(execution: CompiledReadsExecution, source: str | None) -> tuple[str, ...]:
    """The variables that ``@skip`` and ``@include`` name anywhere in the document: the fields
    graphql-core collects depend on their values, and on nothing else the request sends."""
    operation = execution.operation
    key = (source, operation.loc.start if operation.loc is not None else None)
    kept = _condition_names.get(key)
    if kept is not None:
        return kept.names
    found: dict[str, None] = {}
    document = DocumentNode(
        definitions=(execution.operation, *execution.fragment_definitions.values())
    )
    visit(document, _ConditionVariables(found))
    names = tuple(found)
    with suppress(ValueError):  # larger than the whole budget: not kept
        _condition_names[key] = _Conditions(names, sys.getsizeof(source or "") + ENTRY_BYTES)
    return names


def condition_variables(
    document: DocumentNode, operation: OperationDefinitionNode
) -> tuple[str, ...]:
    """The variables that ``@skip`` and ``@include`` name in ``operation`` and the fragments of
    ``document`` (all of them: a name too many only splits plans that are the same)."""
    found: dict[str, None] = {}
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    visit(DocumentNode(definitions=(operation, *fragments)), _ConditionVariables(found))
    return tuple(found)


class _ConditionVariables(Visitor):
    def __init__(self, found: dict[str, None]) -> None:
        super().__init__()
        self._found = found

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        if node.name.value in _CONDITIONS:
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    self._found[argument.value.name.value] = None


class Compiler:
    def __init__(self, execution: CompiledReadsExecution) -> None:
        self._execution = execution
        self.steps = 0

    def object_writer(
        self,
        object_type: GraphQLObjectType,
        field_details_list: list[FieldDetails],
        *,
        root: bool = False,
    ) -> Writer:
        """A writer of ``object_type``'s selected fields from its source: the settings
        (``root``), else a stored model and the values its GraphQL type adds."""
        execution = self._execution
        collected = collect_subfields(
            execution.schema, execution.fragments, execution.variable_values,
            execution.operation, object_type, field_details_list, execution.hide_suggestions,
        )  # fmt: skip
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise Unsupported("@defer or @stream")
        definition = object_type.extensions.get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        model = getattr(origin, "_pydantic_type", None)
        model_fields = (
            set() if model is None else {*model.model_fields, *model.model_computed_fields}
        )
        steps: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]] = []
        for key, details in collected.grouped_field_set.items():
            self.steps += 1
            name = details[0].node.name.value
            if name == "__typename":
                steps.append((key, _constant(object_type.name)))
                continue
            field = object_type.fields.get(name)
            if field is None:
                raise Unsupported(f"unknown field {object_type.name}.{name}")
            if any(d.node.arguments for d in details) or field.args:
                raise Unsupported(f"{object_type.name}.{name} takes arguments")
            strawberry_field = field.extensions.get("strawberry-definition")
            if strawberry_field is None or strawberry_field.extensions:
                raise Unsupported(f"{object_type.name}.{name} has extensions")
            complete = self.completer(field.type, details)
            if root and name in STORED_VALUES:
                steps.append((key, _stored(STORED_VALUES[name], complete)))
            elif strawberry_field.base_resolver is not None:
                raise Unsupported(f"{object_type.name}.{name} has a resolver")
            elif model is not None and strawberry_field.python_name not in model_fields:
                steps.append((key, _added(strawberry_field.python_name, complete)))
            else:
                steps.append((key, _attribute(strawberry_field.python_name, complete)))
        if root:
            return _root_writer(steps)
        return _object_writer(steps, model if model is not None else origin)

    def completer(
        self, type_: GraphQLOutputType, details: list[FieldDetails]
    ) -> Callable[..., Any]:
        """Completes a value of ``type_`` as graphql-core would, or raises PlanMiss. Objects
        take the values their type adds (``extra``) too; everything else takes the value."""
        if isinstance(type_, GraphQLNonNull):
            inner = self.completer(type_.of_type, details)
            return _non_null(inner)
        if isinstance(type_, GraphQLList):
            item = self.completer(type_.of_type, details)
            return _list(item)
        if is_leaf_type(type_):
            return _leaf(type_)
        if isinstance(type_, GraphQLObjectType):
            self._model_of(type_)  # a type of the gateway's own, or not compiled
            return _object(self.object_writer(type_, details))
        if isinstance(type_, GraphQLUnionType):
            members: dict[type, Writer] = {}
            for member in self._execution.schema.get_possible_types(type_):
                members[self._model_of(member)] = self.object_writer(member, details)
            return _union(members)
        raise Unsupported(f"{type_} is an interface")

    @staticmethod
    def _model_of(object_type: GraphQLObjectType) -> type:
        """The class of the values an object type is written from: its stored model, or its
        Strawberry class for a type of its own."""
        definition = object_type.extensions.get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        if origin is None:
            raise Unsupported(f"{object_type.name} has no Strawberry class")
        model = getattr(origin, "_pydantic_type", None)
        return model if model is not None else origin  # type: ignore[no-any-return]


# The writers are closures built once per plan: each call does only what the value needs.


def _constant(value: str) -> Callable[[Any, dict[str, Any]], Any]:
    return lambda _source, _extra: value


def _attribute(name: str, complete: Callable[..., Any]) -> Callable[[Any, dict[str, Any]], Any]:
    def step(source: Any, _extra: dict[str, Any]) -> Any:
        return complete(getattr(source, name), {})

    return step


def _added(name: str, complete: Callable[..., Any]) -> Callable[[Any, dict[str, Any]], Any]:
    def step(_source: Any, extra: dict[str, Any]) -> Any:
        if name not in extra:
            raise PlanMiss(name)
        return complete(extra[name], {})

    return step


def _stored(
    look_up: Callable[[Any], tuple[Any, dict[str, Any]]], complete: Callable[..., Any]
) -> Callable[[Any, dict[str, Any]], Any]:
    def step(settings: Any, _extra: dict[str, Any]) -> Any:
        value, extra = look_up(settings)
        return complete(value, extra)

    return step


def _root_writer(steps: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]) -> Writer:
    def write(settings: Any) -> dict[str, Any]:
        return {key: step(settings, {}) for key, step in steps}

    return write


def _object_writer(
    steps: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]], source_class: Any
) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    def write(source: Any, extra: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(source, source_class):
            raise PlanMiss(source_class)
        return {key: step(source, extra) for key, step in steps}

    return write


def _object(write: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    def complete(value: Any, extra: dict[str, Any]) -> Any:
        return None if value is None else write(value, extra)

    return complete


def _union(members: dict[type, Callable[..., dict[str, Any]]]) -> Callable[..., Any]:
    def complete(value: Any, extra: dict[str, Any]) -> Any:
        if value is None:
            return None
        write = members.get(type(value))
        if write is None:
            raise PlanMiss(type(value))
        return write(value, extra)

    return complete


def _non_null(inner: Callable[..., Any]) -> Callable[..., Any]:
    def complete(value: Any, extra: dict[str, Any]) -> Any:
        completed = inner(value, extra)
        if completed is None:
            raise PlanMiss("null for a non-null field")
        return completed

    return complete


def _list(item: Callable[..., Any]) -> Callable[..., Any]:
    def complete(value: Any, _extra: dict[str, Any]) -> Any:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)):
            raise PlanMiss("not a list")
        return [item(each, {}) for each in value]

    return complete


def _leaf(type_: GraphQLLeafType) -> Callable[..., Any]:
    coerce = type_.coerce_output_value
    # graphql-core's String and ID write a str as it is: most leaves are one, skipped at once.
    passes_str = coerce in _STR_AS_IT_IS

    def complete(value: Any, _extra: dict[str, Any]) -> Any:
        if value is None:
            return None
        if passes_str and type(value) is str:
            return value
        try:
            coerced = coerce(value)
        except Exception as error:  # graphql-core would report it: let it
            raise PlanMiss("not serialisable") from error
        if coerced is None or coerced is Undefined:
            raise PlanMiss("not serialisable")
        return coerced

    return complete
