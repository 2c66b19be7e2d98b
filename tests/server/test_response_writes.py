"""How the gateway's HTTP protocol writes a response (server.head_with_body): the head of an answer
that announces its length goes out with its body, in one write; a streamed answer's head, and an
interim 100 Continue, go out at once, as uvicorn writes them; an application that fails after
starting an answer leaves the client a closed connection, and the server serves the next one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.types import Message, Receive, Scope, Send

from ehr_gateway.server.http_protocol import DeadlineHttpToolsProtocol
from tests.servers import serve_on_loopback

BODY = b'{"data":{"ok":true}}'
# Long enough that nothing arrives unless it was sent.
NOTHING_WITHIN = 0.3


class PacedApp:
    """An ASGI app that starts its answer, then waits for ``release`` before sending the body:
    with a length (``/length``), in chunks (``/stream``), failing instead of sending it
    (``/fail``); ``/echo`` reads the request's body (after a 100 Continue, when asked for one)
    and answers it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/echo":
            message: Message = await receive()
            body = message.get("body", b"")
            await send(_start([(b"content-length", b"%d" % len(body))]))
            await send({"type": "http.response.body", "body": body})
            return
        headers = [] if path == "/stream" else [(b"content-length", b"%d" % len(BODY))]
        await send(_start(headers))
        await self.release.wait()
        if path == "/fail":
            raise RuntimeError("failed after starting the answer")
        await send({"type": "http.response.body", "body": BODY})


def _start(headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": 200, "headers": headers}


@asynccontextmanager
async def connection(
    app: PacedApp,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    async with serve_on_loopback(app, http=DeadlineHttpToolsProtocol) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            yield reader, writer
        finally:
            writer.close()
            app.release.set()  # the server stops once its answers are done


async def arrives_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What one read gets within ``seconds`` (nothing, if nothing came)."""
    try:
        return await asyncio.wait_for(reader.read(1 << 16), seconds)
    except TimeoutError:
        return b""


def request(path: str, *headers: str, body: bytes = b"", method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: test", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_an_answer_with_a_length_goes_out_with_its_head_in_one_write() -> None:
    app = PacedApp()
    async with connection(app) as (reader, writer):
        writer.write(request("/length"))
        assert await arrives_within(reader, NOTHING_WITHIN) == b""  # the head waits for the body

        app.release.set()
        answer = await arrives_within(reader, 10)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-length: {len(BODY)}".encode() in head
    assert body == BODY  # one read: the head and the body were one write


async def test_the_answer_to_head_is_its_head_alone() -> None:
    app = PacedApp()
    app.release.set()
    async with connection(app) as (reader, writer):
        writer.write(request("/length", method="HEAD"))
        answer = await arrives_within(reader, 10)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-length: {len(BODY)}".encode() in answer
    assert answer.endswith(b"\r\n\r\n")  # and no body


async def test_a_streamed_answer_s_head_goes_out_before_its_body() -> None:
    app = PacedApp()
    async with connection(app) as (reader, writer):
        writer.write(request("/stream"))
        head = await arrives_within(reader, 10)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head
        assert head.endswith(b"\r\n\r\n")  # the head alone, before the app sent anything else

        app.release.set()
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            more = await arrives_within(reader, 10)
            assert more, rest
            rest += more
    assert BODY in rest


async def test_a_client_that_asks_may_i_send_the_body_is_told_to_go_on_at_once() -> None:
    app = PacedApp()
    whole = request("/echo", "expect: 100-continue", body=BODY)
    head = whole[: -len(BODY)]
    async with connection(app) as (reader, writer):
        writer.write(head)  # the body only once the server says to go on
        interim = await arrives_within(reader, 10)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"

        writer.write(BODY)
        answer = b""
        while not answer.endswith(BODY):
            more = await arrives_within(reader, 10)
            assert more, answer
            answer += more
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_an_answer_that_fails_after_its_start_closes_its_connection_and_not_the_server() -> (
    None
):
    app = PacedApp()
    async with serve_on_loopback(app, http=DeadlineHttpToolsProtocol) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request("/fail"))
        await asyncio.sleep(0.05)
        app.release.set()
        assert await reader.read() == b""  # closed, without a head announcing what never came
        writer.close()

        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request("/echo", body=BODY))
        answer = b""
        while not answer.endswith(BODY):
            more = await arrives_within(reader, 10)
            assert more, answer
            answer += more
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
