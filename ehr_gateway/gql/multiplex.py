"""Live subscriptions that ask the same thing share one execution.

Thousands of runtime services follow the same tenant with the same document. Executing that
document once per subscriber per change costs about 0.3 ms for a 60-field selection, so 10,000
subscribers would take seconds per change. Instead, subscribers with the same document,
variables, operation and context form a group: the group runs one subscription, and each of its
results (one execution) is handed to every member, serialised once (``fanout.SharedResult``).
This is how Hasura multiplexes live queries.

Only live subscriptions are grouped: one that replays history (a non-null ``sinceVersion``) starts
from its own point, so it runs on its own.

Each member has a bounded queue. A member that falls more than ``bound`` results behind gets the
newest result only, with ``extensions.versionsSkipped: true``: configuration is state, and the
newest version is what matters.

A member that a WebSocket handler runs (``fanout.direct_delivery``) is not handed its results to
send one by one: the group's loop writes each result's frame to its connection itself (see
gql.fanout), and only what is not a plain result (an error before execution, the end) goes back
through Strawberry's handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
)
from strawberry.types import ExecutionResult

from ehr_gateway.gql.documents import DocumentCache
from ehr_gateway.gql.fanout import Operation, SharedResult, direct_delivery

REPLAY_ARGUMENT = "sinceVersion"
DEFAULT_BOUND = 64

Upstream = Callable[[], Awaitable[AsyncGenerator[Any, None]]]


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _replays(operation: OperationDefinitionNode, variables: dict[str, Any]) -> bool:
    """Whether a top-level field asks for history (a sinceVersion that is not null)."""
    for selection in operation.selection_set.selections:
        for argument in getattr(selection, "arguments", None) or ():
            if argument.name.value != REPLAY_ARGUMENT:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                if variables.get(value.name.value) is not None:
                    return True
            elif not isinstance(value, NullValueNode):
                return True
    return False


class _Member:
    __slots__ = ("bound", "delivery", "queue", "ready", "skipped")

    def __init__(self, bound: int, delivery: Operation | None) -> None:
        self.bound = bound
        self.queue: deque[Any] = deque()
        self.skipped = False
        self.ready = asyncio.Event()
        self.delivery = delivery
        if delivery is not None:
            delivery.attach(bound, self._put)

    def offer(self, result: Any, shared: SharedResult | None) -> None:
        if self.delivery is not None:
            self.delivery.offer(result if shared is None else shared)
            return
        if len(self.queue) >= self.bound:
            self.queue.clear()
            self.skipped = True
        self._put(result)

    def _put(self, result: Any) -> None:
        self.queue.append(result)
        self.ready.set()


_END = object()


class _Group:
    def __init__(self, key: Hashable, upstream: Upstream, registry: Multiplexer) -> None:
        self.key = key
        # In the order they joined (a dict): the first to come is written to first.
        self.members: dict[_Member, None] = {}
        self._registry = registry
        self._open_upstream = upstream
        self._upstream: AsyncGenerator[Any, None] | None = None
        self._pump = asyncio.create_task(self._run(), name="ehr-gateway subscription group")

    async def _run(self) -> None:
        try:
            self._upstream = await self._open_upstream()
            async for result in self._upstream:
                # Serialised once for every member written to directly; an error before
                # execution (a subclass) is Strawberry's to answer.
                shared = SharedResult(result) if type(result) is ExecutionResult else None
                for member in list(self.members):
                    member.offer(result, shared)
        finally:
            self._registry.forget(self)
            for member in list(self.members):
                member.offer(_END, None)

    async def join(self, bound: int, delivery: Operation | None) -> AsyncGenerator[Any, None]:
        member = _Member(bound, delivery)
        self.members[member] = None
        try:
            while True:
                while not member.queue:
                    member.ready.clear()
                    await member.ready.wait()
                result = member.queue.popleft()
                if result is _END:
                    return
                if member.skipped and isinstance(result, ExecutionResult):
                    member.skipped = False
                    result = ExecutionResult(
                        data=result.data,
                        errors=result.errors,
                        extensions={**(result.extensions or {}), "versionsSkipped": True},
                    )
                yield result
        finally:
            if delivery is not None:
                delivery.close()
            self.members.pop(member, None)
            if not self.members:
                await self.close()

    async def close(self) -> None:
        self._registry.forget(self)
        if not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self._upstream is not None:
            await self._upstream.aclose()


class Multiplexer:
    """The subscriptions of one process, and the groups they share."""

    def __init__(
        self, documents: DocumentCache, max_tokens: int | None, bound: int = DEFAULT_BOUND
    ) -> None:
        # The documents the schema parses, within the same token limit: a document is parsed
        # once for both, and one past the limit is refused before it is parsed further.
        self._documents = documents
        self._max_tokens = max_tokens
        self.bound = bound
        self.subscriptions = 0  # open subscription operations, grouped or not
        self._groups: dict[Hashable, _Group] = {}

    async def stream(
        self,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
        upstream: Upstream,
    ) -> AsyncGenerator[Any, None]:
        """The results for one client's operation: a share of its group's for a live
        subscription, its own otherwise."""
        operation = self._subscription(query, operation_name)
        if operation is None:
            return await upstream()  # the schema reports what is wrong with it, if anything
        if _replays(operation, variables or {}):
            return self._counted(await upstream())
        # Callers share only with callers who may see exactly what they may see; a denied
        # caller's group is denied alike.
        access = context.principal.access if context.principal else None
        key = (query, json.dumps(variables or {}, sort_keys=True, default=str), operation_name,
               access)  # fmt: skip
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, upstream, self)
        return self._counted(group.join(self.bound, direct_delivery.get()))

    def is_subscription(self, query: str | None, operation_name: str | None) -> bool:
        return self._subscription(query, operation_name) is not None

    def _subscription(
        self, query: str | None, operation_name: str | None
    ) -> OperationDefinitionNode | None:
        if not query:
            return None
        try:
            document = self._documents.parse(query, self._max_tokens)
        except GraphQLError:
            return None
        operation = _operation(document, operation_name)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return None
        return operation

    async def _counted(self, results: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
        self.subscriptions += 1
        try:
            async for result in results:
                yield result
        finally:
            self.subscriptions -= 1
            await results.aclose()

    def forget(self, group: _Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]

    @property
    def groups(self) -> int:
        return len(self._groups)
