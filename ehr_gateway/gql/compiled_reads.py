"""Reads of a tenant's settings written straight to JSON-ready values by a plan compiled once
per validated document and operation, instead of graphql-core resolving and completing every
field (and Strawberry converting every stored pydantic model into its GraphQL type first).

Only the value of a root ``integrationSettings`` field of a query is compiled, and the
``settings`` of a write's ``SettingsSaved`` payload (the same IntegrationSettings, as the save
read it back). The field itself still runs through graphql-core and Strawberry: its arguments
are coerced, its permission is checked (``needs``), its read is recorded (or its write made),
errors are located as ever. What the plan replaces is the completion of the
IntegrationSettings it returned, and only where every field selected below it is one the
compiler positively recognises:

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
from collections.abc import Callable, Hashable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from keyword import iskeyword
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache
from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLEnumType,
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
from graphql.execution.collect_fields import (
    FieldDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.language import (
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    visit,
)
from graphql.language.visitor import Visitor
from graphql.pyutils import Path
from graphql.type.scalars import (
    serialize_boolean,
    serialize_id,
    serialize_int,
    serialize_string,
)

from ehr_gateway.gql.conditions import ConditionsChecked
from ehr_gateway.gql.documents import ENTRY_BYTES
from ehr_gateway.gql.settings_types import STORED_VALUES, IntegrationSettings

MAX_BYTES = 16 * 1024 * 1024
# A compiled field: its share of the generated functions (code, constants, namespace), about
# 700 bytes measured with tracemalloc for the settings query, rounded up.
BYTES_PER_STEP = 800
_ROOT_FIELD = "integrationSettings"
# A settings write's payload: the settings as saved (gql.results.SettingsSaved).
_SAVED_TYPE = "SettingsSaved"
_SAVED_FIELD = "settings"
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
    """graphql-core's execution, with the value of a query's ``integrationSettings`` and of a
    write's ``SettingsSaved.settings`` completed by a compiled plan where there is one."""

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: list[FieldDetails],
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is IntegrationSettings and (
            (
                path.prev is None
                and info.field_name == _ROOT_FIELD
                and self.operation.operation == OperationType.QUERY
            )
            or (info.field_name == _SAVED_FIELD and info.parent_type.name == _SAVED_TYPE)
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


def root_field_set(
    execution: CompiledReadsExecution, root_type: GraphQLObjectType
) -> GroupedFieldSet:
    """The root fields of ``execution``'s operation (fragments and conditions applied), by
    response key; Unsupported for what no plan is compiled for (fragment variables, ``@defer``
    or ``@stream``)."""
    if any(fragment.variable_signatures for fragment in execution.fragments.values()):
        raise Unsupported("fragment variables")
    collected = collect_fields(
        execution.schema, execution.fragments, execution.variable_values, root_type,
        execution.operation, execution.hide_suggestions,
    )  # fmt: skip
    if collected.new_defer_usages or collected.forbidden_directive_instances:
        raise Unsupported("@defer or @stream")
    return collected.grouped_field_set


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
    """Compiles a selection into Python source, once per plan: one function per object type
    selected (and per list's item), each field read by its attribute's name and completed by
    straight-line checks, so that a request runs no dispatch per field and no closure per
    value. What each function does is what graphql-core's completion does for that selection,
    with a PlanMiss wherever graphql-core would write something else."""

    def __init__(self, execution: CompiledReadsExecution) -> None:
        self._execution = execution
        self.steps = 0
        self._lines: list[str] = []
        self._namespace: dict[str, Any] = {
            "PlanMiss": PlanMiss,
            "_EMPTY": _EMPTY,
            "_STR": str,
            "_BOOL": bool,
            "_INT": int,
            "_SEQUENCE": (list, tuple),
            "_MIN_INT": GRAPHQL_MIN_INT,
            "_MAX_INT": GRAPHQL_MAX_INT,
        }
        self._names = 0

    def object_writer(
        self,
        object_type: GraphQLObjectType,
        field_details_list: list[FieldDetails],
        *,
        root: bool = False,
    ) -> Writer:
        """A writer of ``object_type``'s selected fields from its source: the settings
        (``root``: ``write(settings)``), else a stored model and the values its GraphQL type
        adds (``write(model, extra)``)."""
        name = self._object_function(object_type, field_details_list, root=root)
        code = compile("\n".join(self._lines), f"<read plan {object_type.name}>", "exec")
        self._lines = []  # each writer has functions of its own: none is compiled twice
        namespace = dict(self._namespace)
        exec(code, namespace)  # source made here, from the schema's names only
        return namespace[name]  # type: ignore[no-any-return]

    def _name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    def _bind(self, prefix: str, value: Any) -> str:
        """A name for ``value`` in the generated functions' namespace."""
        name = self._name(prefix)
        self._namespace[name] = value
        return name

    def _object_function(
        self,
        object_type: GraphQLObjectType,
        field_details_list: list[FieldDetails],
        *,
        root: bool = False,
    ) -> str:
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
        function = self._name("write_")
        body: list[str] = []
        if not root:
            source_class = self._bind("Class", model if model is not None else origin)
            body.append(f"    if not isinstance(source, {source_class}):")
            body.append(f"        raise PlanMiss({source_class})")
        entries: list[str] = []
        for key, details in collected.grouped_field_set.items():
            self.steps += 1
            name = details[0].node.name.value
            if name == "__typename":
                entries.append(f"{key!r}: {object_type.name!r}")
                continue
            field = object_type.fields.get(name)
            if field is None:
                raise Unsupported(f"unknown field {object_type.name}.{name}")
            if any(d.node.arguments for d in details) or field.args:
                raise Unsupported(f"{object_type.name}.{name} takes arguments")
            strawberry_field = field.extensions.get("strawberry-definition")
            if strawberry_field is None or strawberry_field.extensions:
                raise Unsupported(f"{object_type.name}.{name} has extensions")
            value = self._name("v")
            extra = "_EMPTY"
            python_name = strawberry_field.python_name
            if not python_name.isidentifier() or iskeyword(python_name):
                raise Unsupported(f"{object_type.name}.{name} is not read by name")
            if root and name in STORED_VALUES:
                look_up = self._bind("stored_", STORED_VALUES[name])
                extra = self._name("extra")
                body.append(f"    {value}, {extra} = {look_up}(source)")
            elif strawberry_field.base_resolver is not None:
                raise Unsupported(f"{object_type.name}.{name} has a resolver")
            elif model is not None and python_name not in model_fields:
                # A value the GraphQL type adds to the model's (a block's id).
                body.append(f"    if {python_name!r} not in extra:")
                body.append(f"        raise PlanMiss({python_name!r})")
                body.append(f"    {value} = extra[{python_name!r}]")
            else:
                body.append(f"    {value} = source.{python_name}")
            body.extend(self._complete(field.type, details, value, extra, "    "))
            entries.append(f"{key!r}: {value}")
        signature = "source" if root else "source, extra"
        self._lines.append(f"def {function}({signature}):")
        self._lines.extend(body)
        self._lines.append("    return {" + ", ".join(entries) + "}")
        return function

    def _complete(
        self,
        type_: GraphQLOutputType,
        details: list[FieldDetails],
        value: str,
        extra: str,
        indent: str,
    ) -> list[str]:
        """Lines that complete the value named ``value`` of ``type_`` in place, as graphql-core
        would, or raise PlanMiss. Objects take the values their type adds (``extra``) too."""
        if isinstance(type_, GraphQLNonNull):
            lines = self._complete(type_.of_type, details, value, extra, indent)
            lines.append(f"{indent}if {value} is None:")
            lines.append(f'{indent}    raise PlanMiss("null for a non-null field")')
            return lines
        if isinstance(type_, GraphQLList):
            item = self._name("item_")
            each = self._name("v")
            function = [f"def {item}({each}):"]
            function.extend(self._complete(type_.of_type, details, each, "_EMPTY", "    "))
            function.append(f"    return {each}")
            self._lines.extend(function)
            return [
                f"{indent}if {value} is not None:",
                f"{indent}    if not isinstance({value}, _SEQUENCE):",
                f'{indent}        raise PlanMiss("not a list")',
                f"{indent}    {value} = [{item}(each) for each in {value}]",
            ]
        if is_leaf_type(type_):
            return self._leaf(type_, value, indent)
        if isinstance(type_, GraphQLObjectType):
            self._model_of(type_)  # a type of the gateway's own, or not compiled
            write = self._object_function(type_, details)
            return [
                f"{indent}if {value} is not None:",
                f"{indent}    {value} = {write}({value}, {extra})",
            ]
        if isinstance(type_, GraphQLUnionType):
            lines = [f"{indent}if {value} is not None:", f"{indent}    kind = type({value})"]
            keyword = "if"
            for member in self._execution.schema.get_possible_types(type_):
                model = self._bind("Model", self._model_of(member))
                write = self._object_function(member, details)
                lines.append(f"{indent}    {keyword} kind is {model}:")
                lines.append(f"{indent}        {value} = {write}({value}, {extra})")
                keyword = "elif"
            lines.append(f"{indent}    else:")
            lines.append(f"{indent}        raise PlanMiss(kind)")
            return lines
        raise Unsupported(f"{type_} is an interface")

    def _leaf(self, type_: GraphQLLeafType, value: str, indent: str) -> list[str]:
        coerce = type_.coerce_output_value
        complete = self._bind("leaf_", _leaf(type_))
        # The values graphql-core's own scalars write as they are, passed without a call.
        if coerce in _STR_AS_IT_IS:
            kept = f"type({value}) is not _STR"
        elif coerce is serialize_boolean:
            kept = f"type({value}) is not _BOOL"
        elif coerce is serialize_int:
            kept = f"(type({value}) is not _INT or not _MIN_INT <= {value} <= _MAX_INT)"
        elif isinstance(type_, GraphQLEnumType):
            names = self._bind("names_", _enum_names(type_))
            name = self._name("name")
            return [
                f"{indent}if {value} is not None:",
                f"{indent}    {name} = {names}.get(id({value}))",
                f"{indent}    {value} = {name} if {name} is not None else {complete}({value})",
            ]
        else:
            return [
                f"{indent}if {value} is not None:",
                f"{indent}    {value} = {complete}({value})",
            ]
        return [
            f"{indent}if {value} is not None and {kept}:",
            f"{indent}    {value} = {complete}({value})",
        ]

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


# Read only, by every plan: the values a type adds where nothing adds any.
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _enum_names(type_: GraphQLEnumType) -> dict[int, str]:
    """What ``type_`` writes for each member of the Python enum it wraps, by the member's
    identity (members live as long as their class, and hashing an Enum runs Python code): the
    same function's answers, asked once."""
    names: dict[int, str] = {}
    wrapped = getattr(type_, "wrapped_cls", None)
    if not isinstance(wrapped, type) or not issubclass(wrapped, Enum):
        return names
    for member in wrapped:
        try:
            name = type_.coerce_output_value(member)
        except Exception:  # left to the per-request call, which graphql-core then reports
            continue
        if type(name) is str:
            names[id(member)] = name
    return names


def _leaf(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    """A non-null value of ``type_`` as graphql-core serialises it, or PlanMiss where graphql-core
    would report an error."""
    coerce = type_.coerce_output_value

    def complete(value: Any) -> Any:
        try:
            coerced = coerce(value)
        except Exception as error:  # graphql-core would report it: let it
            raise PlanMiss("not serialisable") from error
        if coerced is None or coerced is Undefined:
            raise PlanMiss("not serialisable")
        return coerced

    return complete
