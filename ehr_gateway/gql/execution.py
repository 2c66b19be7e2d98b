"""How the schema runs operations: one database deadline for each, subscriptions over
WebSocket only, identical live subscriptions sharing one execution."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from graphql.execution import Executor
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StreamResult,
)
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from ehr_gateway.gql.conditions import ConditionsChecked
from ehr_gateway.gql.documents import DocumentCache
from ehr_gateway.gql.error_policy import ErrorPolicy
from ehr_gateway.gql.extension_hooks import CachedHooksRunner
from ehr_gateway.gql.multiplex import Multiplexer
from ehr_gateway.gql.persisted_documents import (
    PersistedDocuments,
)
from ehr_gateway.storage.client import (
    database_deadline,
)

if TYPE_CHECKING:
    from ehr_gateway.gql.fast_reads import FastReads
    from ehr_gateway.gql.fast_writes import FastWrites


class OneOperationContext(ExecutionContext):
    """Strawberry's execution context, whose operation name, when the request gives none, is
    that of the document's only operation, never the first of several: graphql-core then
    refuses a document of several operations without an operationName, as the GraphQL spec
    (GetOperation) requires, rather than run whichever came first (a mutation bundled with the
    query the client meant to send)."""

    @property
    def operation_name(self) -> str | None:
        if self._provided_operation_name is not None:
            return self._provided_operation_name
        document = self.graphql_document
        if document is None:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].name is None:
            return None
        return operations[0].name.value


class SubscriptionOverHttp(Exception):
    """A subscription sent as an HTTP request: it is served over WebSocket only. Raised out of
    the view for the request gate to answer (as it answers JSON nested too deep)."""


class GatewaySchema(ErrorPolicy, strawberry.Schema):
    multiplexer: Multiplexer
    documents: DocumentCache
    persisted: PersistedDocuments
    # One deadline per operation for all its database calls (EHRGW_DB_TIMEOUT_MS); None: each
    # call waits as the client's own timeouts allow.
    database_deadline_s: float | None = None
    # Whole settings reads answered without this schema's execution (None: compiled reads off).
    fast_reads: FastReads | None = None
    # Block updates answered without this schema's execution (None: compiled reads off).
    fast_writes: FastWrites | None = None

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)

    def _create_execution_context(
        self,
        query: str | None,
        allowed_operation_types: Iterable[OperationType],
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionContext:
        return OneOperationContext(
            query=query,
            schema=self,
            allowed_operations=allowed_operation_types,
            context=context_value,
            root_value=root_value,
            variables=variable_values,
            provided_operation_name=operation_name,
            operation_extensions=operation_extensions,
        )

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Queries and mutations over HTTP. (WebSocket operations run through ``stream`` and
        ``subscribe``.) A subscription here would be executed as a query and fail on its first
        field with an internal error: it is refused before it runs, the document parsed only."""
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        try:
            # The one place every HTTP query and mutation passes: all its database calls, the
            # wait of a queued writer included, share one deadline.
            with database_deadline(self.database_deadline_s):
                return await super().execute(
                    query, variable_values, context_value, root_value, operation_name,
                    allowed - {OperationType.SUBSCRIPTION}, operation_extensions,
                )  # fmt: skip
        except InvalidOperationTypeError as refused:
            if refused.operation_type == OperationType.SUBSCRIPTION:
                raise SubscriptionOverHttp from None
            raise

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """Live subscriptions asking the same thing share one execution (see gql.multiplex).
        A query or mutation sent over WebSocket has one deadline for its database calls, as
        over HTTP; a subscription lives for as long as the client stays, so each of its reads
        (where it starts, each page of the history it replays) has a deadline of its own
        (resolvers.history_reads)."""

        async def own_stream() -> StreamResult:
            return await super(GatewaySchema, self).stream(
                query, variable_values, context_value, root_value, operation_name,
                operation_extensions, allowed_operation_types,
            )  # fmt: skip

        results = await self.multiplexer.stream(
            query, variable_values, operation_name, context_value, own_stream
        )
        if self.multiplexer.is_subscription(query, operation_name):
            return results
        return self._within_deadline(results)

    async def _within_deadline(self, results: StreamResult) -> StreamResult:
        """Each result of ``results`` (one, for a query or mutation) produced under the
        deadline: an async generator runs in the context of whoever asks it for its next
        item."""
        try:
            while True:
                with database_deadline(self.database_deadline_s):
                    try:
                        result = await anext(results)
                    except StopAsyncIteration:
                        return
                yield result
        finally:
            await results.aclose()


class ExecutionWithoutSuggestions(ConditionsChecked):
    """Execution whose request errors (variables of the wrong shape: an unknown input field, an
    enum value misspelled) name no schema element the client did not name itself."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})
