"""A subscription group writing its results straight to its members' connections (gql.multiplex
and gql.fanout), with connections whose writes wait until the test lets them through: how far
a member that does not keep up may fall behind, what it gets then, and that the end of its
stream comes after its last frame. (Over real connections: test_subscription_fanout.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

from strawberry.types import ExecutionResult

from ehr_gateway.gql.documents import DocumentCache
from ehr_gateway.gql.fanout import Connection, direct_delivery
from ehr_gateway.gql.multiplex import Multiplexer

FOLLOW = 'subscription Follow { configurationChanged(tenantId: "t") { version } }'
BOUND = 8
_END = None


class Client:
    """The frames one connection was sent; with ``gate``, each write waits until it is set."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.frames: list[dict[str, Any]] = []
        self.gate = gate
        self.connection = Connection(self.send_text)

    async def send_text(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.frames.append(json.loads(text))

    def versions(self, operation_id: str) -> list[int]:
        return [
            frame["payload"]["data"]["version"]
            for frame in self.frames
            if frame["id"] == operation_id
        ]

    def skipped(self, operation_id: str) -> list[int]:
        return [
            frame["payload"]["data"]["version"]
            for frame in self.frames
            if frame["id"] == operation_id
            and (frame["payload"].get("extensions") or {}).get("versionsSkipped")
        ]


class Source:
    """The group's one upstream: the versions the test publishes."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.opened = 0

    async def open(self) -> AsyncGenerator[Any, None]:
        self.opened += 1
        return self._results()

    async def _results(self) -> AsyncGenerator[Any, None]:
        while (version := await self.queue.get()) is not _END:
            yield ExecutionResult(data={"version": version}, errors=None)

    async def publish(self, *versions: int | None) -> None:
        for version in versions:
            self.queue.put_nowait(version)
        await until(self.queue.empty)  # the group's loop has taken them all
        await asyncio.sleep(0)


async def follow(
    multiplexer: Multiplexer, source: Source, client: Client, operation_id: str
) -> list[Any]:
    """One operation, as a WebSocket handler runs it; what is handed back to the handler (not
    written by the group) is returned once the stream ends."""
    direct_delivery.set(client.connection.operation(operation_id, "next"))
    context = SimpleNamespace(principal=None)
    handed_back = []
    async for result in await multiplexer.stream(FOLLOW, None, None, context, source.open):
        handed_back.append(result)
    return handed_back


async def until(condition: Any) -> None:
    while not condition():  # noqa: ASYNC110 - the tasks under test run between checks
        await asyncio.sleep(0.001)


async def test_a_member_that_falls_a_whole_queue_behind_gets_the_newest_version_marked() -> None:
    multiplexer = Multiplexer(DocumentCache(), max_tokens=None, bound=BOUND)
    source = Source()
    fast, slow = Client(), Client(gate=asyncio.Event())
    members = [
        asyncio.create_task(follow(multiplexer, source, fast, "f")),
        asyncio.create_task(follow(multiplexer, source, slow, "s")),
    ]
    await until(lambda: multiplexer.subscriptions == 2)
    assert source.opened == 1 and multiplexer.groups == 1

    # 1,000 versions while the slow connection takes none: the fast one has them all, and no
    # more than a queue's worth waits for the slow one.
    await source.publish(*range(1, 1001))
    await until(lambda: fast.versions("f")[-1:] == [1000])
    assert fast.versions("f") == list(range(1, 1001))
    assert slow.frames == []

    assert slow.gate is not None
    slow.gate.set()
    await until(lambda: slow.versions("s")[-1:] == [1000])
    received = slow.versions("s")
    assert received == sorted(set(received))
    assert len(received) <= BOUND + 1  # the write that waited, then at most a queue
    # Told once, on the first version after the gap; every version after that arrives.
    assert slow.skipped("s") == [received[1]]
    assert received[1:] == list(range(received[1], 1001))
    assert fast.skipped("f") == []

    await source.publish(_END)
    assert await asyncio.gather(*members) == [[], []]  # the end, handed back to the handler
    assert multiplexer.subscriptions == 0 and multiplexer.groups == 0


async def test_the_end_of_a_stream_comes_after_the_last_frame_of_a_member_that_waits() -> None:
    multiplexer = Multiplexer(DocumentCache(), max_tokens=None, bound=BOUND)
    source = Source()
    slow = Client(gate=asyncio.Event())
    member = asyncio.create_task(follow(multiplexer, source, slow, "s"))
    await until(lambda: multiplexer.subscriptions == 1)

    await source.publish(1, 2, 3, _END)
    await asyncio.sleep(0.01)
    assert not member.done()  # its frames still wait: Strawberry's `complete` must too

    assert slow.gate is not None
    slow.gate.set()
    await member
    assert slow.versions("s") == [1, 2, 3]


async def test_an_operation_ended_while_its_frames_wait_gets_none_of_them() -> None:
    multiplexer = Multiplexer(DocumentCache(), max_tokens=None, bound=BOUND)
    source = Source()
    slow = Client(gate=asyncio.Event())
    staying = asyncio.create_task(follow(multiplexer, source, slow, "staying"))
    ending = asyncio.create_task(follow(multiplexer, source, slow, "ending"))
    await until(lambda: multiplexer.subscriptions == 2)

    await source.publish(1, 2, 3)
    ending.cancel()  # the client's `complete` (graphql-transport-ws) or `stop` (graphql-ws)
    await until(ending.done)
    await source.publish(4)

    assert slow.gate is not None
    slow.gate.set()
    await until(lambda: slow.versions("staying")[-1:] == [4])
    assert slow.versions("staying") == [1, 2, 3, 4]
    # The first write was under way when it ended (it waited first, for the staying one or
    # for this one); nothing queued for it was written after.
    assert slow.versions("ending") in ([], [1])
    await source.publish(_END)
    await staying


async def test_a_connection_that_fails_stops_taking_frames_and_its_members_still_end() -> None:
    multiplexer = Multiplexer(DocumentCache(), max_tokens=None, bound=BOUND)
    source = Source()
    healthy = Client()

    async def gone(text: str) -> None:
        raise ConnectionResetError("the client went away")

    broken = Connection(gone)
    members = [
        asyncio.create_task(follow(multiplexer, source, healthy, "h")),
        asyncio.create_task(_follow_on(multiplexer, source, broken, "b")),
    ]
    await until(lambda: multiplexer.subscriptions == 2)
    await source.publish(1, 2, 3, _END)
    await asyncio.gather(*members)
    assert healthy.versions("h") == [1, 2, 3]


async def _follow_on(
    multiplexer: Multiplexer, source: Source, connection: Connection, operation_id: str
) -> None:
    direct_delivery.set(connection.operation(operation_id, "next"))
    async for _ in await multiplexer.stream(
        FOLLOW, None, None, SimpleNamespace(principal=None), source.open
    ):
        pass
