"""Whole settings writes (the block updates: ``updateEhrSettings``, ``updateFhirSettings``,
``updateOAuthSettings``, ``updateHeaderSettings``) answered without Strawberry's view, schema
extensions and graphql-core's operation execution: the request's JSON read, an executor built
by graphql-core (the variables coerced), the root field's arguments coerced, the field's own
resolver called (Strawberry's argument conversion, ``Requires`` and ``Idempotent``, the write),
and its payload written by a plan made once per document text, operation and set of
``@skip``/``@include`` values.

What is answered here: a POSTed mutation whose one root field (after fragments and conditions)
is a block update, whose text the generic path has already parsed, held to the request limits
and validated (``admit``, called by gql.operation_record after such a mutation ran). Per
request, the work is the generic path's, with the same functions: graphql-core's executor
(``build``: the variables' coercion) and argument coercion (``get_argument_values``), the
field's resolver as graphql-core calls it (``field.resolve(None, info, **arguments)``, the info
built by the executor), which runs Strawberry's conversion of the arguments, the permission
rule (``Requires``: the operation noted for the audit, a refusal found deeper recorded), the
idempotency key (``Idempotent``) and the write; the operation's metrics label
(``note_operation``), its list budget, under the operation's database deadline.

Everything that sends a request to the generic path is decided before anything has an effect:
a text not yet admitted, another root field or two of them, a document the compiler does not
recognise, variables or arguments that do not coerce, a refused caller (no principal, or one
``Requires.denied`` refuses: the resolver records and answers the denial), an idempotency key
``Idempotent`` would refuse. Once the resolver has started, the request is answered here,
whatever happens: when the resolver raises, or returns a value the plan would not write as
graphql-core would, the operation is completed by graphql-core's own execution over the same
document and variables, its root field answered by the value (or the exception) the resolver
gave, and its errors passed through the schema's error policy, as the generic path does. The
answer is byte for byte the generic path's, and so are its effects
(``tests/gql/test_fast_writes.py`` compares both).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
    OperationDefinitionNode,
    execute,
    get_argument_values,
)
from graphql import (
    ExecutionResult as CoreResult,
)
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.language import OperationType as AstOperationType
from graphql.pyutils import Path
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.http import process_result
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from ehr_gateway.gql import idempotency
from ehr_gateway.gql.admitted_texts import Admitted, AdmittedTexts, Plan, Plans
from ehr_gateway.gql.authorization import Requires
from ehr_gateway.gql.compiled_reads import (
    CompiledReadsExecution,
    Compiler,
    PlanMiss,
    Unsupported,
    Writer,
    condition_variables,
    root_field_set,
)
from ehr_gateway.gql.fanout import encode
from ehr_gateway.gql.fast_reads import encoded, plain_output
from ehr_gateway.gql.idempotency import Idempotent
from ehr_gateway.gql.list_budget import start_budget
from ehr_gateway.gql.operation_record import note_operation, root_fields
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.runtime.json_limits import DEFAULT_MAX_DEPTH, loads_bounded
from ehr_gateway.storage.client import database_deadline

if TYPE_CHECKING:
    from ehr_gateway.gql.execution import GatewaySchema

logger = logging.getLogger("ehr_gateway.graphql")
# The mutations that save one block of the active EHR's settings (gql.features.settings
# ``_update_block``): the same arguments, extensions and payload.
BLOCK_UPDATES = frozenset(
    {"updateEhrSettings", "updateFhirSettings", "updateOAuthSettings", "updateHeaderSettings"}
)
_SAVED_TYPE = "SettingsSaved"
_SAVED_FIELD = "settings"

# Strawberry's check, the one its execution gives graphql-core.
_IS_AWAITABLE = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)

# How requests offered to the fast path went: "answered", "completed by graphql-core" (the
# resolver raised, or the plan missed: answered here all the same), or why the generic path
# got it.
outcomes: Counter[str] = Counter()


@dataclass(frozen=True, slots=True)
class _Root:
    """The one root block update, under its response key."""

    key: str
    field: GraphQLField
    node: FieldNode
    nodes: list[FieldNode]
    parent: GraphQLObjectType  # the mutation type
    path: Path
    rule: Requires
    arguments: tuple[tuple[str, str], ...]  # (GraphQL name, Python name)
    write: Writer  # the payload (a SettingsResult) as graphql-core completes it


_Plan = Plan[_Root]


class FastWrites:
    """The fast path for block updates of one schema (see the module's description)."""

    def __init__(self, schema: GatewaySchema, *, hide_suggestions: bool) -> None:
        self._schema = schema
        self._hide_suggestions = hide_suggestions
        self._admitted: AdmittedTexts[Admitted] = AdmittedTexts(AstOperationType.MUTATION)
        self._plans: Plans[_Root] = Plans("write")

    def admit(self, text: str, operation_name: str | None, document: DocumentNode) -> None:
        """``text`` was parsed, held to the limits and validated, and ran as a mutation named
        ``operation_name`` (the name Strawberry found, the request may have sent none): later
        requests sending both may be answered here."""

        def entry(operation: OperationDefinitionNode, size: int) -> Admitted:
            return Admitted(
                document, operation, condition_variables(document, operation),
                root_fields(operation), size,
            )  # fmt: skip

        self._admitted.admit(text, operation_name, document, entry)

    def knows(self, text: str, operation_name: str | None) -> bool:
        """Whether a request sending ``text`` and ``operation_name`` is this path's to try."""
        return self._admitted.knows(text, operation_name)

    async def answer(
        self, body: bytes, text: str, name: str | None, context_of: Callable[[], Context]
    ) -> bytes | None:
        """The response body for the POSTed ``body`` (which sent ``text`` and ``name``), or
        None: the generic path answers it, and nothing has happened yet. ``context_of`` makes
        the request's context."""
        admitted = self._admitted.get(text, name)
        if admitted is None:
            outcomes["not admitted"] += 1
            return None
        try:
            prepared = self._prepare(body, text, name, admitted, context_of)
        except Exception:
            # Nothing has happened yet: the generic path meets it, and reports it, as ever.
            logger.warning("a block update left to the generic path", exc_info=True)
            outcomes["error before the write"] += 1
            return None
        if isinstance(prepared, str):
            outcomes[prepared] += 1
            return None
        return await self._write(admitted, name, *prepared)

    def _prepare(
        self,
        body: bytes,
        text: str,
        name: str | None,
        admitted: Admitted,
        context_of: Callable[[], Context],
    ) -> str | tuple[_Plan, dict[str, Any] | None, Context, Any, dict[str, Any]]:
        """Everything decided before the write: the plan, the variables as read, the context,
        the executor and the root field's arguments; or why the generic path must answer."""
        schema = self._schema
        # The variables as the generic path reads them (the json module's reading: orjson reads
        # an integer past 64 bits as a float).
        variables = loads_bounded(body, max_depth=DEFAULT_MAX_DEPTH).get("variables")
        context = context_of()
        executor = schema.execution_context_class.build(
            schema._schema, admitted.document, None, context, variables, name,
            is_awaitable=_IS_AWAITABLE, hide_suggestions=self._hide_suggestions,
        )  # fmt: skip
        if isinstance(executor, list):  # the generic path names what does not fit
            return "variables"
        values = executor.variable_values
        conditions = tuple(values.coerced.get(each) for each in admitted.conditions)
        plan = self._plans.plan(text, name, conditions, lambda: self._compile(executor))
        root = plan.compiled
        if root is None:
            return plan.reason
        try:
            given = get_argument_values(
                root.field, root.node, values, hide_suggestions=self._hide_suggestions
            )
        except Exception:
            return "arguments"
        kwargs = {python: given[graphql] for graphql, python in root.arguments if graphql in given}
        if context.principal is None or root.rule.denied(context, kwargs) is not None:
            # The resolver refuses it, records the denial and says what is missing.
            return "refused"
        if isinstance(idempotency.key_of(given.get(idempotency.ARGUMENT), context), Failed):
            return "idempotency key"  # answered by Idempotent, as ValidationFailed
        return plan, variables, context, executor, given

    async def _write(
        self,
        admitted: Admitted,
        name: str | None,
        plan: _Plan,
        variables: dict[str, Any] | None,
        context: Context,
        executor: Any,
        given: dict[str, Any],
    ) -> bytes:
        """The answer to a prepared request, whatever the resolver does."""
        schema = self._schema
        root = plan.compiled
        assert root is not None
        # From here on the request is answered here: the resolver may write.
        start_budget()
        info = executor.build_resolve_info(root.field, root.nodes, root.parent, root.path)
        with database_deadline(schema.database_deadline_s):
            try:
                result = root.field.resolve(None, info, **given)  # type: ignore[misc]
                if optimized_is_awaitable(result):
                    result = await result
            except Exception as error:
                return await self._completed(admitted, name, variables, context, error=error)
        try:
            data = {root.key: root.write(result)}
        except Exception:
            return await self._completed(admitted, name, variables, context, value=result)
        if context.record is not None:
            note_operation(context.record, OperationType.MUTATION, admitted.label_names, True)
        outcomes["answered"] += 1
        return encoded({"data": data}, plain=plan.plain_json)

    async def _completed(
        self,
        admitted: Admitted,
        name: str | None,
        variables: dict[str, Any] | None,
        context: Context,
        *,
        value: Any = None,
        error: Exception | None = None,
    ) -> bytes:
        """The answer when the resolver raised ``error`` or gave a ``value`` the plan does not
        write: graphql-core's execution of the operation, whose root field answers with what the
        resolver gave (nothing is resolved twice), its errors through the error policy, as the
        generic path answers it."""
        outcomes["completed by graphql-core"] += 1
        schema = self._schema

        def resolved(next_: Callable[..., Any], source: Any, info: Any, **arguments: Any) -> Any:
            if info.path.prev is not None:
                return next_(source, info, **arguments)
            if error is not None:
                raise error
            return value

        with database_deadline(schema.database_deadline_s):
            result = execute(
                schema._schema, admitted.document, None, context, variables, name,
                middleware=[resolved], executor_class=schema.execution_context_class,
                is_awaitable=_IS_AWAITABLE,
            )  # fmt: skip
            if not isinstance(result, CoreResult):
                result = await result
        errors = result.errors
        if errors:
            schema._process_errors(errors, self._execution_context(admitted, name, context))
        if context.record is not None:
            note_operation(context.record, OperationType.MUTATION, admitted.label_names, not errors)
        answer = process_result(ExecutionResult(data=result.data, errors=errors))
        return encode(answer).encode()

    def _execution_context(self, admitted: Admitted, name: str | None, context: Context) -> Any:
        """What the error policy is told of the operation (that it is a mutation)."""
        from ehr_gateway.gql.execution import OneOperationContext

        execution = OneOperationContext(
            query=None, schema=self._schema, allowed_operations=(OperationType.MUTATION,),
            context=context, provided_operation_name=name,
        )  # fmt: skip
        execution.graphql_document = admitted.document
        return execution

    def _compile(self, executor: Any) -> tuple[_Root, bool, int]:
        """The operation's one root block update with its payload's writer; Unsupported when
        the generic path must run it."""
        schema = self._schema
        if not isinstance(executor, CompiledReadsExecution):
            raise Unsupported("compiled reads are off")
        if not executor.error_propagation:
            raise Unsupported("error propagation disabled")
        if executor.middleware_manager is not None and executor.middleware_manager.middlewares:
            raise Unsupported("field middleware")
        if any(_resolves(extension) for extension in schema.get_extensions()):
            raise Unsupported("schema extensions that resolve fields")
        mutation_type = schema._schema.mutation_type
        assert mutation_type is not None
        grouped_field_set = root_field_set(executor, mutation_type)
        if len(grouped_field_set) != 1:
            raise Unsupported("not one root field")
        ((key, details),) = grouped_field_set.items()
        node = details[0].node
        name = node.name.value
        if name not in BLOCK_UPDATES or any(d.fragment_variable_values for d in details):
            raise Unsupported(f"root field {name}")
        field = mutation_type.fields[name]
        definition = field.extensions.get("strawberry-definition")
        rules: list[Any] = list(getattr(definition, "extensions", ()))
        if (
            len(rules) != 2
            or type(rules[0]) is not Requires
            or type(rules[1]) is not Idempotent
            or not rules[1].stores
        ):
            raise Unsupported(f"{name} has other extensions")
        result_type = field.type
        if not isinstance(result_type, GraphQLNonNull) or not isinstance(
            result_type.of_type, GraphQLUnionType
        ):
            raise Unsupported(f"{name} does not answer a SettingsResult")
        compiler = Compiler(executor)
        write = _union_writer(compiler, executor, result_type.of_type, details)
        names = schema.config.name_converter
        arguments = tuple(
            (names.get_graphql_name(argument), argument.python_name)
            for argument in field.extensions["strawberry-definition"].arguments
        )
        root = _Root(
            key, field, node, [d.node for d in details], mutation_type,
            Path(None, key, mutation_type.name), rules[0], arguments, write,
        )  # fmt: skip
        return root, plain_output(result_type, set()), compiler.steps


def _resolves(extension: SchemaExtension) -> bool:
    """Whether a schema extension is also field middleware (Strawberry makes it so)."""
    return type(extension).resolve is not SchemaExtension.resolve


def _union_writer(
    compiler: Compiler,
    executor: CompiledReadsExecution,
    union: GraphQLUnionType,
    details: list[FieldDetails],
) -> Writer:
    """A writer of the non-null SettingsResult ``union``'s selection: each member's fields as
    graphql-core completes them, the saved settings by the read plan graphql-core's execution
    uses for them (CompiledReadsExecution); PlanMiss for anything else."""
    members: dict[type, Callable[[Any], Any]] = {}
    for member in executor.schema.get_possible_types(union):
        model = Compiler._model_of(member)
        if member.name == _SAVED_TYPE:
            members[model] = _saved_writer(compiler, executor, member, details)
        else:
            members[model] = _with_empty(compiler.object_writer(member, details))

    def write(result: Any) -> Any:
        if result is None:
            raise PlanMiss("null for a non-null field")
        member = members.get(type(result))
        if member is None:
            raise PlanMiss(type(result))
        return member(result)

    return write


def _with_empty(write: Writer) -> Callable[[Any], Any]:
    def written(source: Any) -> Any:
        return write(source, {})

    return written


def _saved_writer(
    compiler: Compiler,
    executor: CompiledReadsExecution,
    saved: GraphQLObjectType,
    details: list[FieldDetails],
) -> Callable[[Any], Any]:
    """SettingsSaved's selected fields: ``__typename``, and its ``settings`` by the plan the
    generic path's execution completes them with."""
    collected = collect_subfields(
        executor.schema, executor.fragments, executor.variable_values, executor.operation,
        saved, details, executor.hide_suggestions,
    )  # fmt: skip
    if collected.new_defer_usages or collected.forbidden_directive_instances:
        raise Unsupported("@defer or @stream")
    settings_field = saved.fields[_SAVED_FIELD]
    settings_type = settings_field.type
    if not isinstance(settings_type, GraphQLNonNull) or not isinstance(
        settings_type.of_type, GraphQLObjectType
    ):
        raise Unsupported("SettingsSaved.settings is not a non-null object")
    fields: list[tuple[str, Writer | None]] = []  # None: __typename
    for key, field_details in collected.grouped_field_set.items():
        name = field_details[0].node.name.value
        if name == "__typename":
            fields.append((key, None))
        elif name == _SAVED_FIELD and not any(d.node.arguments for d in field_details):
            plan = compiler.object_writer(settings_type.of_type, field_details, root=True)
            fields.append((key, plan))
        else:
            raise Unsupported(f"SettingsSaved.{name}")
    from ehr_gateway.gql.settings_types import IntegrationSettings

    def write(result: Any) -> Any:
        written: dict[str, Any] = {}
        for key, plan in fields:
            if plan is None:
                written[key] = _SAVED_TYPE
                continue
            settings = result.settings
            if type(settings) is not IntegrationSettings:
                raise PlanMiss("not the settings")
            written[key] = plan(settings)
        return written

    return write
