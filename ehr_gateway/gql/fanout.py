"""A multiplexed group's results written straight to each member's connection.

Ten thousand subscribers of one group used to cost ten thousand operations' worth of work per
change in Strawberry's WebSocket handler: a task woken, a result passed up three async
generators, a message built and encoded, a frame sent. Here the group's one loop writes each
member's frame itself: the payload is serialised once per result (``SharedResult``), a member's
frame is its prefix (its operation id and the protocol's message type) around that payload, and
the write is started in place, so that a connection that takes it at once costs no task switch at
all. Strawberry still runs each operation (its limits, its ``complete`` and ``error`` messages,
unsubscribe, close, token expiry); only its ``next``/``data`` messages for grouped results are
written here.

A connection that cannot take a frame at once (the client reads slowly, the server's buffer for
it is full) gets a writer task of its own, and its frames queue behind the write that waits, per
operation and in order: the group's loop goes on to the other connections. Each operation's queue
is bounded like every subscriber's: one that falls ``bound`` results behind drops them and gets
the newest with ``extensions.versionsSkipped: true`` (configuration is state).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import ContextVar
from typing import Any

from strawberry.types import ExecutionResult

SendText = Callable[[str], Coroutine[Any, Any, None]]


def encode(data: object) -> str:
    """JSON as the GraphQL view writes it (compact)."""
    return json.dumps(data, separators=(",", ":"))


class SharedResult:
    """One result of a group, as every member's message carries it: serialised once."""

    __slots__ = ("_payload", "_skipped_payload", "result")

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result
        self._payload: str | None = None
        self._skipped_payload: str | None = None

    def payload(self, versions_skipped: bool) -> str:
        if versions_skipped:
            if self._skipped_payload is None:
                self._skipped_payload = encode(self._message(versions_skipped=True))
            return self._skipped_payload
        if self._payload is None:
            self._payload = encode(self._message(versions_skipped=False))
        return self._payload

    def _message(self, *, versions_skipped: bool) -> dict[str, object]:
        # The payload Strawberry's handlers build for a result (next / data).
        result = self.result
        message: dict[str, object] = {"data": result.data}
        if result.errors:
            message["errors"] = [error.formatted for error in result.errors]
        extensions = result.extensions
        if versions_skipped:
            extensions = {**(extensions or {}), "versionsSkipped": True}
        if extensions:
            message["extensions"] = extensions
        return message


class Operation:
    """One operation's place on its connection: what its grouped results are written as, and
    those waiting for a slow connection. Results that are not plain results (an error before
    execution, the end of the stream) are passed back, in order, to Strawberry's handling."""

    __slots__ = (
        "_pass_through",
        "_pending",
        "_prefix",
        "_skipped",
        "bound",
        "closed",
        "connection",
        "scheduled",
    )

    def __init__(self, connection: Connection, prefix: str) -> None:
        self.connection = connection
        self._prefix = prefix
        self.bound = 0
        self.closed = False
        self.scheduled = False  # in the connection's queue of operations with frames waiting
        self._skipped = False
        self._pending: deque[object] | None = None  # made only for a connection that waits
        self._pass_through: Callable[[object], None] = _nowhere

    def attach(self, bound: int, pass_through: Callable[[object], None]) -> None:
        """Joined to a group: at most ``bound`` results wait; the rest go to ``pass_through``."""
        self.bound = bound
        self._pass_through = pass_through

    def offer(self, item: object) -> None:
        """A group's result (a ``SharedResult``) or anything for Strawberry to handle."""
        self.connection.offer(self, item)

    def close(self) -> None:
        """Unsubscribed: nothing more is written for it, and what waits is dropped."""
        self.closed = True
        self._pending = None

    def frame(self, shared: SharedResult) -> str:
        skipped, self._skipped = self._skipped, False
        return f"{self._prefix}{shared.payload(skipped)}}}"

    def pass_through(self, item: object) -> None:
        self._pass_through(item)

    def enqueue(self, item: object) -> None:
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        elif isinstance(item, SharedResult) and len(pending) >= self.bound:
            # Fallen behind by a whole queue: the newest result, marked, instead of every step.
            kept = [waiting for waiting in pending if not isinstance(waiting, SharedResult)]
            pending.clear()
            pending.extend(kept)
            self._skipped = True
        pending.append(item)

    def take(self) -> object | None:
        pending = self._pending
        return pending.popleft() if pending else None

    @property
    def waiting(self) -> bool:
        return bool(self._pending)


def _nowhere(item: object) -> None:
    pass


class Connection:
    """One WebSocket connection's frames of grouped results, written in place while it keeps
    up, by a writer task of its own while it does not."""

    def __init__(self, send_text: SendText) -> None:
        self._send_text = send_text
        self._ready: deque[Operation] = deque()  # operations with frames waiting, in turn
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def operation(self, operation_id: str, message_type: str) -> Operation:
        """A place for the operation ``operation_id``, whose results are ``message_type``
        messages: ``next`` (graphql-transport-ws) or ``data`` (graphql-ws)."""
        return Operation(self, f'{{"id":{encode(operation_id)},"type":"{message_type}","payload":')

    def offer(self, operation: Operation, item: object) -> None:
        if operation.closed:
            return
        if self._closed:
            # Nothing can be written any more, but the operation still hears of its end.
            if not isinstance(item, SharedResult):
                operation.pass_through(item)
            return
        if self._writer is None:
            self._write_now(operation, item)
            return
        operation.enqueue(item)
        if not operation.scheduled:
            operation.scheduled = True
            self._ready.append(operation)

    def _write_now(self, operation: Operation, item: object) -> None:
        if not isinstance(item, SharedResult):
            operation.pass_through(item)
            return
        try:
            rest = run_eagerly(self._send_text(operation.frame(item)))
        except Exception:  # the connection is gone: its handler ends its operations
            self.close()
            return
        if rest is not None:
            self._writer = asyncio.create_task(
                self._write_waiting(rest), name="ehr-gateway subscription writer"
            )

    async def _write_waiting(self, rest: Awaitable[None]) -> None:
        """Finishes the write that had to wait, then writes what queued behind it, an operation
        at a time in turn (each operation's results in order)."""
        try:
            await rest
            while self._ready:
                operation = self._ready.popleft()
                operation.scheduled = False
                item = operation.take()
                if item is None or operation.closed:
                    continue
                if operation.waiting:
                    operation.scheduled = True
                    self._ready.append(operation)
                if isinstance(item, SharedResult):
                    await self._send_text(operation.frame(item))
                else:
                    operation.pass_through(item)
        except Exception:  # the connection is gone: its handler ends its operations
            self._closed = True
            self._ready.clear()
        finally:
            self._writer = None

    def close(self) -> None:
        """The connection is closing: nothing more is written to it."""
        self._closed = True
        self._ready.clear()
        if self._writer is not None:
            self._writer.cancel()


# The operation the current task runs for a WebSocket handler, where its grouped results go.
direct_delivery: ContextVar[Operation | None] = ContextVar("direct_delivery", default=None)


def run_eagerly(coroutine: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Runs ``coroutine`` in place until it first has to wait: None when it finished without
    waiting, otherwise the rest of it, to be awaited by a task. (Python 3.12's eager tasks do
    this; a write to a connection that keeps up never waits, and a task for each would cost
    more than the write.)"""
    try:
        waiting_on = coroutine.send(None)
    except StopIteration:
        return None
    return _Rest(coroutine, waiting_on)


class _Rest:
    """A coroutine that has been started and waits on ``waiting_on``, to be awaited further."""

    __slots__ = ("_coroutine", "_waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting_on = self._coroutine, self._waiting_on
        while True:
            try:
                sent = yield waiting_on  # the awaiting task waits on it, as the coroutine would
            except BaseException as error:  # cancelled (or closed) while waiting
                try:
                    waiting_on = coroutine.throw(error)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coroutine.send(sent)
                except StopIteration:
                    return
