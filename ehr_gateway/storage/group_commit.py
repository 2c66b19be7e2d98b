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
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError, WriteError

from ehr_gateway.storage.client import DeadlineExceeded, database_deadline, deadline_at

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
        # Each queued operation, the future its writer awaits, and its writer's deadline.
        self._queue: list[tuple[Operation, asyncio.Future[None], float | None]] = []
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
        deadline = deadline_at()
        self._queue.append((operation, done, deadline))
        self._start_sender()
        if deadline is None:
            await done
            return
        try:
            # The writer waits until its own deadline, whichever writer's command it is in.
            async with asyncio.timeout_at(_loop_time(deadline)):
                await done
        except TimeoutError:
            raise DeadlineExceeded("the deadline passed while the write was in a batch") from None

    def _start_sender(self) -> None:
        if self._queue and not self._busy and (self._sender is None or self._sender.done()):
            # A task of its own: a writer whose request is cancelled must not take the command,
            # and the other writers' operations in it, down with it.
            # Its own context too: not the deadline of whichever writer happened to start it.
            self._sender = asyncio.create_task(self._send_queued(), context=contextvars.Context())

    async def _send_queued(self) -> None:
        while self._queue and not self._busy:
            batch, self._queue = self._queue[:BATCH_MAX], self._queue[BATCH_MAX:]
            self._busy = True
            try:
                # The command has as long as the most patient writer in it; each writer stops
                # waiting at its own deadline.
                deadlines = [deadline for _, _, deadline in batch]
                within = (
                    None
                    if None in deadlines
                    else max(0.001, max(d for d in deadlines if d is not None) - time.monotonic())
                )
                with database_deadline(within):
                    outcomes = await self._send([operation for operation, _, _ in batch])
            except Exception as error:  # the command as a whole failed: so did each operation
                for _, done, _ in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            except BaseException:  # cancelled (the loop is closing): so is every writer's wait
                for _, done, _ in [*batch, *self._queue]:
                    done.cancel()
                self._queue = []
                raise
            finally:
                self._busy = False
            for (_, done, _), failed in zip(batch, outcomes, strict=True):
                if done.done():  # its writer was cancelled meanwhile
                    continue
                if failed is None:
                    done.set_result(None)
                else:
                    done.set_exception(failed)


def _loop_time(monotonic: float) -> float:
    """``monotonic`` (time.monotonic()) on the running loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic - time.monotonic())


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
