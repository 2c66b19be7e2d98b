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
        fast_reads = getattr(execution.schema, "fast_reads", None)
        if (
            fast_reads is not None
            and operation == OperationType.QUERY
            and execution.query is not None
            and not execution.pre_execution_errors
        ):
            # Parsed, held to the limits and validated as every request is: a later request
            # sending the same text may be answered by the fast path (gql.fast_reads).
            fast_reads.admit(execution.query, execution.operation_name, document)
        fast_writes = getattr(execution.schema, "fast_writes", None)
        if (
            fast_writes is not None
            and operation == OperationType.MUTATION
            and execution.query is not None
            and not execution.pre_execution_errors
        ):
            # As for reads: the same text may be answered by gql.fast_writes.
            fast_writes.admit(execution.query, execution.operation_name, document)


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
