"""Group commit: operations that writers queue while the previous command is in flight go to the
database together, as one command.

Each write is three or four round trips to the database, and much of a round trip's cost, on
both sides, is the command rather than the document in it: on the embedded server one insert of
16 documents costs about half the server time and a fifth of the driver time of 16 single
inserts. Nothing waits on a timer: an operation queued when nothing is in flight is sent at once,
so a lone writer is not delayed, and under load the batches grow with the load.

Batching changes no outcome: the command runs every operation on its own (unordered), and each
writer gets its own result, its own error, or, when the whole command failed, that failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

Operation = TypeVar("Operation")

# Operations per command at most; the rest go in the next one.
BATCH_MAX = 256


class GroupCommit(Generic[Operation]):
    """Runs queued operations through ``send``, which returns, for each operation of a batch in
    order, None (done) or the error that operation met; or raises if the whole batch failed."""

    def __init__(
        self, send: Callable[[list[Operation]], Awaitable[list[PyMongoError | None]]]
    ) -> None:
        self._send = send
        self._queue: list[tuple[Operation, asyncio.Future[None]]] = []
        self._busy = False  # a command is in flight
        self._sender: asyncio.Task[None] | None = None

    async def run(self, operation: Operation) -> None:
        """Run ``operation`` in the next command; raises what it met."""
        if not self._busy and not self._queue:
            # Nothing in flight: send it at once, from this task (no hand-over to another
            # task, which on a busy event loop costs a turn of the loop on the way out and
            # again on the way back).
            self._busy = True
            try:
                [failed] = await self._send([operation])
            finally:
                self._busy = False
                self._start_sender()  # for what queued meanwhile
            if failed is not None:
                raise failed
            return
        done = asyncio.get_running_loop().create_future()
        self._queue.append((operation, done))
        self._start_sender()
        await done

    def _start_sender(self) -> None:
        if self._queue and not self._busy and (self._sender is None or self._sender.done()):
            # A task of its own: a writer whose request is cancelled must not take the command,
            # and the other writers' operations in it, down with it.
            self._sender = asyncio.create_task(self._send_queued())

    async def _send_queued(self) -> None:
        while self._queue and not self._busy:
            batch, self._queue = self._queue[:BATCH_MAX], self._queue[BATCH_MAX:]
            self._busy = True
            try:
                outcomes = await self._send([operation for operation, _ in batch])
            except Exception as error:  # the command as a whole failed: so did each operation
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            except BaseException:  # cancelled (the loop is closing): so is every writer's wait
                for _, done in [*batch, *self._queue]:
                    done.cancel()
                self._queue = []
                raise
            finally:
                self._busy = False
            for (_, done), failed in zip(batch, outcomes, strict=True):
                if done.done():  # its writer was cancelled meanwhile
                    continue
                if failed is None:
                    done.set_result(None)
                else:
                    done.set_exception(failed)


def per_operation(error: BulkWriteError, count: int) -> list[PyMongoError | None]:
    """The outcome of each of the ``count`` operations of an unordered bulk write that raised
    ``error``: None for those that succeeded, else the error the same operation on its own would
    have raised. A write concern error concerns them all: it is raised."""
    details: Any = error.details
    if details.get("writeConcernErrors"):
        raise error
    outcomes: list[PyMongoError | None] = [None] * count
    for failed in details.get("writeErrors", []):
        code, message = failed.get("code"), failed.get("errmsg", "")
        kind = DuplicateKeyError if code in (11000, 11001, 12582) else WriteError
        outcomes[failed["index"]] = kind(message, code, failed)
    return outcomes
