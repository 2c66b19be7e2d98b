"""What the request's record (resolvers.context.RequestRecord) is told of the operation that ran:
its metrics label, and whether its response may be cached (server.response_cache keeps it
only then)."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import FieldNode, OperationDefinitionNode
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from ehr_gateway.resolvers.context import Context, RequestRecord

# Root fields whose result is a function of the tenant's settings and the deployment alone.
CACHEABLE_FIELDS = frozenset({"integrationSettings", "readiness"})
# The schema's attribute holding the fast path each kind of operation is admitted to, when the
# deployment has it (gql.fast_reads, gql.fast_writes).
_FAST_PATHS = {OperationType.QUERY: "fast_reads", OperationType.MUTATION: "fast_writes"}


def root_fields(operation: OperationDefinitionNode) -> list[str] | None:
    """The root field names, or None when the root holds fragments (not worth following)."""
    names = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None
        names.append(selection.name.value)
    return names


class RecordExecution(SchemaExtension):
    """Notes in the request's record its operation's metrics label and whether its response may
    be cached (see server.response_cache)."""

    def on_execute(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if not isinstance(context, Context) or context.record is None or document is None:
            return
        record = context.record
        node = get_operation_ast(document, execution.operation_name)
        if node is None:
            return
        operation = OperationType(node.operation.value)
        result = execution.result
        note_operation(
            record, operation, root_fields(node), result is not None and not result.errors
        )
        attribute = _FAST_PATHS.get(operation)
        fast_path = None if attribute is None else getattr(execution.schema, attribute, None)
        if (
            fast_path is not None
            and execution.query is not None
            and not execution.pre_execution_errors
        ):
            # Parsed, held to the limits and validated as every request is: a later request
            # sending the same text may be answered by its kind's fast path.
            fast_path.admit(execution.query, execution.operation_name, document)


def note_operation(
    record: RequestRecord, operation: OperationType, names: list[str] | None, succeeded: bool
) -> None:
    """Notes an operation with the root fields ``names`` in ``record``; ``succeeded``: it ran
    without errors."""
    record.operation = _label(operation, names)
    record.cacheable = (
        operation == OperationType.QUERY
        and names is not None
        and set(names) <= CACHEABLE_FIELDS
        and succeeded
        and not record.unversioned
    )


def _label(operation: OperationType, names: list[str] | None) -> str:
    """A bounded metrics label: the operation type and its one schema root field, or
    "multiple" (never the client's operation name, which is free text). One label per
    combination of root fields would let any caller mint series by the thousand."""
    if not names:
        return f"{operation.value}:fragments"
    distinct = set(names)
    field = names[0] if len(distinct) == 1 else "multiple"
    return f"{operation.value}:{field}"
