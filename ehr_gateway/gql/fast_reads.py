"""Whole settings reads answered without Strawberry's view or graphql-core's execution: the
request's JSON read, its variables coerced, each root field's permission checked and its settings
read, and the answer written to bytes, by a plan made once per document text, operation and set
of ``@skip``/``@include`` values.

What is answered here: a POSTed query whose root fields (after fragments and conditions) are all
``integrationSettings``, each completed by a compiled plan (gql.compiled_reads), whose text the
generic path has already parsed, held to the request limits and validated (``admit``, called by
gql.operation_record after such a query ran), so that the text is known to pass every check made
before execution. Per request, the work is what the generic path does, with the same functions:
graphql-core's coercion of the variables (``get_variable_values``) and of the arguments
(``get_argument_values``; except for the usual read's one ``$tenantId: ID!`` sent as a string,
which both coerce to the string itself), the field's own permission rule (``Requires.denied``),
the resolver's read (``read_integration_settings``: the settings cache, the read noted in the
request's record), the operation's metrics label and cacheability (``note_operation``), under
the operation's database deadline.

Anything else gives ``None`` and the request goes to the generic path, which answers it as ever,
before anything was sent: a text not yet admitted, another root field, a document the compiler
does not recognise, variables that do not coerce, a refused caller (whose refusal is audited and
answered by the resolver), any exception while reading (the generic path reads again and reports
it), a value the plan would not write as graphql-core would. The answer is byte for byte the
generic path's (``tests/gql/test_compiled_reads.py`` compares them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLUnionType,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    VariableNode,
    get_argument_values,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import OperationType as AstOperationType
from strawberry.types.graphql import OperationType

from ehr_gateway.gql.admitted_texts import Admitted, AdmittedTexts, Plans
from ehr_gateway.gql.authorization import Requires
from ehr_gateway.gql.compiled_reads import (
    CompiledReadsExecution,
    Compiler,
    Unsupported,
    Writer,
    condition_variables,
    root_field_set,
)
from ehr_gateway.gql.fanout import encode
from ehr_gateway.gql.features.settings import read_integration_settings
from ehr_gateway.gql.operation_record import note_operation, root_fields
from ehr_gateway.resolvers.audit import current_operation
from ehr_gateway.resolvers.context import Context
from ehr_gateway.runtime.json_limits import DEFAULT_MAX_DEPTH, loads_bounded
from ehr_gateway.storage.client import database_deadline

if TYPE_CHECKING:
    from ehr_gateway.gql.execution import GatewaySchema

_ROOT_FIELD = "integrationSettings"
# The keys of a request the fast path reads; anything else (extensions, a documentId) is the
# generic path's to interpret.
_REQUEST_KEYS = frozenset({"query", "variables", "operationName"})
# Leaves orjson writes as the standard encoder does (no floats, whose forms differ).
_PLAIN_SCALARS = frozenset({"String", "ID", "Boolean", "Int", "DateTime"})

# How requests offered to the fast path went: "answered", or why the generic path got it.
outcomes: Counter[str] = Counter()


@dataclass(frozen=True, slots=True)
class _Admitted(Admitted):
    """A query's text the generic path accepted for one operation name."""

    # The operation's only variable when it is an ID! without a default or directives (the
    # usual read's $tenantId), else None.
    id_variable: str | None = None


@dataclass(frozen=True, slots=True)
class _Root:
    """One root ``integrationSettings`` field, under its response key."""

    key: str
    field: GraphQLField
    node: FieldNode
    arguments: tuple[tuple[str, str], ...]  # (GraphQL name, Python name)
    rule: Requires
    write: Writer
    # The Python name of the field's only argument when the field takes nothing but an ID!
    # and is given the operation's ID! variable (``_Admitted.id_variable``), else None.
    id_argument: str | None = None


class FastReads:
    """The fast path of one schema (see the module's description)."""

    def __init__(self, schema: GatewaySchema, *, hide_suggestions: bool) -> None:
        self._schema = schema
        self._hide_suggestions = hide_suggestions
        self._admitted: AdmittedTexts[_Admitted] = AdmittedTexts(AstOperationType.QUERY)
        self._plans: Plans[tuple[_Root, ...]] = Plans("read")

    def admit(self, text: str, operation_name: str | None, document: DocumentNode) -> None:
        """``text`` was parsed, held to the limits and validated, and ran as a query named
        ``operation_name`` (the name Strawberry found, the request may have sent none): later
        requests sending both may be answered here."""

        def entry(operation: OperationDefinitionNode, size: int) -> _Admitted:
            conditions = condition_variables(document, operation)
            return _Admitted(
                document, operation, conditions, root_fields(operation), size,
                None if conditions else _id_variable(operation),
            )  # fmt: skip

        self._admitted.admit(text, operation_name, document, entry)

    async def answer(self, body: bytes, context_of: Callable[[], Context]) -> bytes | None:
        """The response body for the POSTed ``body``, or None: the generic path answers it.
        ``context_of`` makes the request's context (once its plan is known)."""
        request = plain_request(body)
        if request is None:
            outcomes["not a plain request"] += 1
            return None
        return await self.answer_plain(body, request, context_of)

    async def answer_plain(
        self, body: bytes, request: PlainRequest, context_of: Callable[[], Context]
    ) -> bytes | None:
        """As ``answer``, for a body ``plain_request`` read as ``request``."""
        text, name, variables = request
        admitted = self._admitted.get(text, name)
        if admitted is None:
            outcomes["not admitted"] += 1
            return None
        # The one variable of the usual read, a tenant's ID! sent as a string: graphql-core
        # coerces it to the string itself (tests/gql/test_compiled_reads.py compares the
        # answers for generated values), so it is not coerced again here.
        tenant_id = (
            variables.get(admitted.id_variable)
            if variables is not None and admitted.id_variable is not None
            else None
        )
        values: VariableValues | None = None
        if type(tenant_id) is str:
            conditions: tuple[Any, ...] = ()  # an operation whose only variable is an ID
        else:
            tenant_id = None
            variables, values = self._variable_values(body, admitted)
            if values is None:  # the generic path names what does not fit
                outcomes["variables"] += 1
                return None
            conditions = tuple(values.coerced.get(each) for each in admitted.conditions)
        plan = self._plans.plan(
            text, name, conditions, lambda: self._compile(admitted, name, variables)
        )
        if plan.compiled is None:
            outcomes[plan.reason] += 1
            return None
        context = context_of()
        data: dict[str, Any] = {}
        for root in plan.compiled:
            if tenant_id is not None and root.id_argument is not None:
                kwargs = {root.id_argument: tenant_id}
            else:
                if values is None:
                    _, values = self._variable_values(body, admitted)
                    if values is None:
                        outcomes["variables"] += 1
                        return None
                try:
                    given = get_argument_values(
                        root.field, root.node, values, hide_suggestions=self._hide_suggestions
                    )
                except Exception:
                    outcomes["arguments"] += 1
                    return None
                kwargs = {
                    python: given[graphql] for graphql, python in root.arguments if graphql in given
                }
            if context.principal is None or root.rule.denied(context, kwargs) is not None:
                # The resolver refuses it, records the denial and says what is missing.
                outcomes["refused"] += 1
                return None
            token = current_operation.set(_ROOT_FIELD)
            try:
                with database_deadline(self._schema.database_deadline_s):
                    settings = await read_integration_settings(context, **kwargs)
                data[root.key] = None if settings is None else root.write(settings)
            except Exception:
                # Read again, and any error reported, by the generic path.
                outcomes["miss"] += 1
                return None
            finally:
                current_operation.reset(token)
        if context.record is not None:
            note_operation(context.record, OperationType.QUERY, admitted.label_names, True)
        outcomes["answered"] += 1
        return encoded({"data": data}, plain=plan.plain_json)

    def _variable_values(
        self, body: bytes, admitted: _Admitted
    ) -> tuple[dict[str, Any] | None, VariableValues | None]:
        """The variables as the generic path reads them (the json module's reading: orjson reads
        an integer past 64 bits as a float), and graphql-core's coercion of them (None where they
        do not fit)."""
        variables = loads_bounded(body, max_depth=DEFAULT_MAX_DEPTH).get("variables")
        found = get_variable_values(
            self._schema._schema, admitted.operation.variable_definitions or (),
            variables or {}, hide_suggestions=self._hide_suggestions,
        )  # fmt: skip
        return variables, None if isinstance(found, list) else found

    def _compile(
        self, admitted: _Admitted, name: str | None, variables: dict[str, Any] | None
    ) -> tuple[tuple[_Root, ...], bool, int]:
        """The root fields of the operation, with these variables' conditions, each with its
        compiled writer; Unsupported when the generic path must run it."""
        schema = self._schema
        execution_class = schema.execution_context_class
        if not isinstance(execution_class, type) or not issubclass(
            execution_class, CompiledReadsExecution
        ):
            raise Unsupported("compiled reads are off")
        execution = execution_class.build(
            schema._schema, admitted.document, raw_variable_values=variables,
            operation_name=name, hide_suggestions=self._hide_suggestions,
        )  # fmt: skip
        if isinstance(execution, list):
            raise Unsupported("not executable")
        if not execution.error_propagation:
            raise Unsupported("error propagation disabled")
        query_type = schema._schema.query_type
        assert query_type is not None
        compiled = cast(CompiledReadsExecution, execution)
        grouped_field_set = root_field_set(compiled, query_type)
        compiler = Compiler(compiled)
        names = schema.config.name_converter
        roots = []
        plain = True
        for key, details in grouped_field_set.items():
            node = details[0].node
            if node.name.value != _ROOT_FIELD or details[0].fragment_variable_values:
                raise Unsupported(f"root field {node.name.value}")
            field = query_type.fields[_ROOT_FIELD]
            definition = field.extensions.get("strawberry-definition")
            rules: list[Any] = list(getattr(definition, "extensions", ()))
            if len(rules) != 1 or not isinstance(rules[0], Requires):
                raise Unsupported(f"{_ROOT_FIELD} has other extensions")
            if isinstance(field.type, GraphQLNonNull) or not isinstance(
                field.type, GraphQLObjectType
            ):
                raise Unsupported(f"{_ROOT_FIELD} is not a nullable object")
            write = compiler.object_writer(field.type, details, root=True)
            plain = plain and plain_output(field.type, set())
            arguments = tuple(
                (names.get_graphql_name(argument), argument.python_name)
                for argument in definition.arguments
            )
            id_argument = _id_argument(field, node, definition, admitted.id_variable)
            roots.append(_Root(key, field, node, arguments, rules[0], write, id_argument))
        if not roots:
            raise Unsupported("no root field")
        return tuple(roots), plain, compiler.steps


# A POST's document text, operation name and variables.
PlainRequest = tuple[str, str | None, dict[str, Any] | None]


def plain_request(body: bytes) -> PlainRequest | None:
    """The query, operationName and variables of a POSTed ``body`` that sends nothing else, each
    of its expected type; None for anything else (not JSON, nested too deep, other members: the
    generic path's to interpret or refuse)."""
    request = _read_request(body)
    if type(request) is not dict or not request.keys() <= _REQUEST_KEYS:
        return None
    text, name, variables = (
        request.get("query"), request.get("operationName"), request.get("variables")
    )  # fmt: skip
    if (
        type(text) is not str
        or not (name is None or type(name) is str)
        or not (variables is None or type(variables) is dict)
    ):
        return None
    return text, name, variables


def _read_request(body: bytes) -> Any:
    """The request's JSON, None where the generic path would refuse it. orjson reads it where it
    reads what the json module reads (the generic path's parser): UTF-8 without a byte order
    mark, no NaN or Infinity, no lone surrogates; it refuses the rest, which the json module
    then reads (or refuses) as ever. Integers past 64 bits, which orjson reads as floats, are
    read again by the json module wherever they could matter (``_variable_values``). Nested too
    deep is refused before either parser sees it, as the generic path refuses it."""
    if body.count(b"[") + body.count(b"{") > DEFAULT_MAX_DEPTH:
        # Too many brackets to know the depth without scanning: the thorough check.
        with suppress(ValueError):
            return loads_bounded(body, max_depth=DEFAULT_MAX_DEPTH)
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    with suppress(ValueError):
        return loads_bounded(body, max_depth=DEFAULT_MAX_DEPTH)
    return None


def _id_variable(operation: OperationDefinitionNode) -> str | None:
    """The name of ``operation``'s only variable when it is declared ``ID!``, without a default
    or directives: graphql-core coerces a string sent for it to the string itself."""
    definitions = operation.variable_definitions or ()
    if len(definitions) != 1:
        return None
    definition = definitions[0]
    type_ = definition.type
    if (
        definition.default_value is not None
        or definition.directives
        or not isinstance(type_, NonNullTypeNode)
        or not isinstance(type_.type, NamedTypeNode)
        or type_.type.name.value != "ID"
    ):
        return None
    return definition.variable.name.value


def _id_argument(
    field: GraphQLField, node: FieldNode, definition: Any, id_variable: str | None
) -> str | None:
    """The Python name of ``field``'s argument when its only argument is an ``ID!`` (graphql-
    core's own ID) given nothing but ``id_variable``: the argument is the variable's value."""
    given_arguments = node.arguments or ()
    if id_variable is None or len(field.args) != 1 or len(given_arguments) != 1:
        return None
    (name, argument), given = next(iter(field.args.items())), given_arguments[0]
    if (
        not isinstance(argument.type, GraphQLNonNull)
        or argument.type.of_type is not GraphQLID
        or given.name.value != name
        or not isinstance(given.value, VariableNode)
        or given.value.name.value != id_variable
        or len(definition.arguments) != 1
    ):
        return None
    return definition.arguments[0].python_name  # type: ignore[no-any-return]


def plain_output(type_: GraphQLOutputType, seen: set[str]) -> bool:
    """Whether every leaf under ``type_`` is written by orjson as by the standard encoder."""
    if isinstance(type_, GraphQLNonNull | GraphQLList):
        return plain_output(type_.of_type, seen)
    if isinstance(type_, GraphQLEnumType):
        return True
    if isinstance(type_, GraphQLScalarType):
        return type_.name in _PLAIN_SCALARS
    if isinstance(type_, GraphQLObjectType | GraphQLUnionType):
        if type_.name in seen:
            return True
        seen.add(type_.name)
        members = type_.types if isinstance(type_, GraphQLUnionType) else [type_]
        for member in members:
            seen.add(member.name)
            if not all(plain_output(field.type, seen) for field in member.fields.values()):
                return False
        return True
    return False


def encoded(response: dict[str, Any], *, plain: bool) -> bytes:
    """``response`` as the GraphQL view writes it (gql.fanout.encode: compact, ASCII): orjson
    writes the same bytes for strings, integers, booleans and null while they are printable
    ASCII (the standard encoder escapes DEL and everything past ASCII)."""
    if plain:
        try:  # try rather than contextlib.suppress: a context manager's calls, per request
            written = orjson.dumps(response)
        except TypeError:
            pass
        else:
            if written.isascii() and b"\x7f" not in written:
                return written
    return encode(response).encode()
