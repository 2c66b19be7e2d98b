"""Holes found by attacking a served gateway's HTTP protocol over raw sockets (server.http_protocol,
server.head_with_body): each test states the attack and the README claim it breaks, and fails
while the hole is open."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import gateway_config, open_gateway
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback

READ_TIMEOUT_S = 1
# uvicorn's own keep-alive idleness, which the gateway does not change.
KEEP_ALIVE_S = 5
# A console file every deployment serves without a token (about 20 KB).
ASSET = b"/console/vendor/graphql.web.mjs"
# The shortest request uvicorn parses: answered 404, a few hundred bytes of answer each.
TINY_REQUEST = b"GET /x HTTP/1.1\r\n\r\n"

READ_SETTINGS = """
query ReadSettings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { version }
}
"""
# The gateway's outbound timeout in the issuer test, and how the issuer drips its key set: a
# part every DRIP_EVERY_S (each well within the timeout), DRIP_PARTS of them (far beyond it).
OUTBOUND_TIMEOUT_S = 1.0
DRIP_EVERY_S = 0.3
DRIP_PARTS = 30


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    running = GatewayProcess(
        tmp_path_factory.mktemp("attack7"),
        EHRGW_MONGODB_URL=database_url,
        EHRGW_DATABASE=f"attack7_{uuid.uuid4().hex[:8]}",
        EHRGW_REQUEST_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    )
    yield running
    running.stop()


def non_reading_connection(gateway: GatewayProcess) -> socket.socket:
    """A connection whose client takes almost nothing off the wire: a small receive buffer,
    never read until the test says so."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.connect(("127.0.0.1", gateway.port))
    return connection


def send_all_without_reading(connection: socket.socket, data: bytes, within: float) -> int:
    """Send as much of ``data`` as the server takes in ``within`` seconds; the bytes sent."""
    connection.setblocking(False)
    sent = 0
    deadline = time.monotonic() + within
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += connection.send(data[sent:])
        except BlockingIOError:
            time.sleep(0.05)
    connection.setblocking(True)
    return sent


def read_until_closed(connection: socket.socket, quiet: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or is quiet for ``quiet`` s (False)."""
    connection.settimeout(quiet)
    received = bytearray()
    try:
        while chunk := connection.recv(1 << 16):
            received += chunk
    except TimeoutError:
        return bytes(received), False
    except ConnectionResetError:
        pass
    return bytes(received), True


def open_descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_its_answers_is_disconnected(gateway: GatewayProcess) -> None:
    """Attack: on each of 10 connections, ask for a console file 300 times in one pipelined
    packet (about 6 MB of answers, more than the kernel's socket buffers take; no token needed)
    and never read. uvicorn writes with no deadline: the answer that does not fit waits for the
    write buffer to drain, and its keep-alive close waits for the unsent answers, so the
    connection, its descriptor, its unsent answers and the application task waiting on them are
    held for as long as the client likes. The slowloris README's "Slow clients" closes on the
    read side ("A request must arrive whole ... else the connection is closed: uvicorn alone
    waits forever"), moved to the write side; "What a deployment must add" says the gateway
    bounds what one connection may cost. (A GraphiQL script of 3.5 MB, served without a token in
    development mode, holds two descriptors per connection the same way: 100 connections held
    200 descriptors past 20 s.) Well past the read deadline and uvicorn's keep-alive idleness,
    the gateway should have let go of every one of them."""
    pid = gateway.process.pid
    before = open_descriptors(pid)
    connections = [non_reading_connection(gateway) for _ in range(10)]
    try:
        for connection in connections:
            requests = b"GET %s HTTP/1.1\r\nHost: gateway\r\n\r\n" % ASSET * 300
            assert send_all_without_reading(connection, requests, within=5) == len(requests)
        time.sleep(READ_TIMEOUT_S + KEEP_ALIVE_S + 6)  # the clients read nothing meanwhile
        held = open_descriptors(pid) - before
    finally:
        for connection in connections:
            connection.close()
    assert held < 5, f"{held} descriptors still held for 10 clients that stopped reading"


def test_pipelined_tiny_requests_do_not_multiply_into_held_memory(
    gateway: GatewayProcess,
) -> None:
    """Attack: on each of 4 connections, send 20,000 pipelined 19-byte requests (380 KB, no
    token) and read nothing. uvicorn parses every request of each chunk it reads into a queued
    request cycle (its pipeline has no bound; it only stops reading after the chunk), and with
    the client not reading none of them finishes: about 40 MB of the gateway's memory per
    connection for 380 KB sent, held as long as the client keeps the connection (see the test
    above). Breaks README's Security "Request limits"/"What is defended" promise that small
    requests cannot cost the gateway without bound; ten such connections took a served gateway
    from 194 MB to 590 MB resident."""
    pid = gateway.process.pid
    before = resident_kib(pid)
    connections = [non_reading_connection(gateway) for _ in range(4)]
    try:
        for connection in connections:
            send_all_without_reading(connection, TINY_REQUEST * 20_000, within=5)
        grown = 0
        for _ in range(20):  # the server works through what it read
            time.sleep(0.5)
            grown = max(grown, resident_kib(pid) - before)
    finally:
        for connection in connections:
            connection.close()
    assert grown < 32 * 1024, (
        f"4 connections of pipelined 19-byte requests grew the gateway by {grown // 1024} MB"
    )


def test_a_pipelined_request_is_answered_before_a_malformed_one_after_it(
    gateway: GatewayProcess,
) -> None:
    """Attack: one packet with a valid GET /healthz followed by a malformed request. uvicorn
    parses the whole packet before the first request's application task runs, answers the
    parse error with a 400 and closes: the client reads a 400 as the answer to its valid
    request, whose own answer is lost (written to a closed connection). Pipelined answers
    must come in request order, one per request (RFC 9112 9.3.2); the first answer here belongs
    to the second request."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as connection:
        connection.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\nNOT\x01A REQUEST\r\n\r\n"
        )
        received, _ = read_until_closed(connection, quiet=3)
    first_status_line = received.split(b"\r\n", 1)[0]
    assert first_status_line == b"HTTP/1.1 200 OK", (
        f"the answer to GET /healthz was {first_status_line!r}: {received[:200]!r}"
    )


def test_a_request_head_of_megabytes_is_refused(gateway: GatewayProcess) -> None:
    """Attack: GET /healthz (no token) with one 4 MB header. The httptools protocol the gateway
    serves with caps neither the request line nor the headers (uvicorn's h11 protocol refuses
    a head over 16 KB; nginx's default is 8 KB): a head of any size is buffered and parsed, in
    CPU that grows faster than its size (one 48 MB header took 2.4 s of the gateway's CPU, one
    of 128 MB a whole core until the read deadline closed it) and memory (a 32 MB header grew
    the process by 96 MB). README's "Request limits" caps the body ("bodies over
    EHRGW_MAX_BODY_BYTES get 413") and every GraphQL document, but a request's head, which
    every route reads before any of those checks, has no limit at all: the answer is 200."""
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Padding: %s\r\n\r\n" % (
        b"a" * (4 << 20)
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as connection:
        try:
            connection.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            return  # refused before it was all sent
        received, _ = read_until_closed(connection, quiet=3)
    status_line = received.split(b"\r\n", 1)[0]
    assert status_line != b"HTTP/1.1 200 OK", "a 4 MB request head was read whole and answered"


@dataclass
class DrippingIssuer:
    """An OpenID issuer whose key set arrives a few bytes at a time, each part within any read
    timeout; notes whether it got to send the last part."""

    key: RSAKey
    url: str = ""
    drip_finished: bool = False

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url, "aud": "ehr-gateway", "sub": "staff", "iat": now, "exp": now + 300,
            "tenants": "*", "roles": ["viewer"],
        }  # fmt: skip
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks.json"})

        async def jwks(request: Request) -> Response:
            public = {**self.key.as_dict(private=False), "alg": "RS256", "use": "sig"}
            body = orjson.dumps({"keys": [public]})
            size = -(-len(body) // DRIP_PARTS)

            async def parts() -> AsyncIterator[bytes]:
                for start in range(0, len(body), size):
                    yield body[start : start + size]
                    await asyncio.sleep(DRIP_EVERY_S)
                self.drip_finished = True

            return StreamingResponse(parts(), media_type="application/json")

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks.json", jwks),
            ]
        )


@pytest.fixture
async def dripping_issuer() -> AsyncIterator[DrippingIssuer]:
    issuer = DrippingIssuer(RSAKey.generate_key(2048, parameters={"kid": "drip-key-1"}))
    async with serve_on_loopback(issuer.app()) as url:
        issuer.url = url
        yield issuer


async def test_a_key_set_dripped_past_the_outbound_timeout_is_given_up_on(
    database_url: str, tmp_path: Path, dripping_issuer: DrippingIssuer
) -> None:
    """Attack (a misbehaving or compromised sign-in issuer, or anything on its path): send the
    key set a few bytes at a time, each part within the outbound timeout (1 s here), 30 parts
    0.3 s apart. README ("Calls the gateway makes"): the sign-in issuer "is read by a client of
    its own with the outbound timeout". That client is a plain httpx client, whose timeout
    bounds each read, not the call: the gateway reads the whole 9 s drip, holding the key
    fetch's lock, so every request needing the keys (each one once they are 5 minutes old)
    waits behind it, without bound. The outbound client for tenants' calls bounds the whole
    call (runtime.outbound.exchange: asyncio.timeout over every hop); this one does not."""
    config = gateway_config(
        database_url, tmp_path, auth_issuer=dripping_issuer.url, allow_insecure_http=True,
        outbound_timeout_s=OUTBOUND_TIMEOUT_S,
    )  # fmt: skip
    async for gateway in open_gateway(config):
        await gateway.client.post(
            "/graphql",
            json={"query": READ_SETTINGS, "variables": {"tenantId": "acme"}},
            headers={"authorization": f"Bearer {dripping_issuer.token()}"},
            timeout=60,
        )
    assert not dripping_issuer.drip_finished, (
        f"the gateway read a key set dripped over {DRIP_PARTS * DRIP_EVERY_S:g} s to its end, "
        f"with an outbound timeout of {OUTBOUND_TIMEOUT_S:g} s"
    )


def test_pipelined_answers_all_precede_a_websocket_handshake_after_them(
    gateway: GatewayProcess,
) -> None:
    """Attack: one packet with three GET /healthz and then a WebSocket handshake on /graphql.
    uvicorn hands the connection to the WebSocket protocol as soon as it parses the handshake,
    without waiting for the HTTP requests before it: the first is answered, then the 101, then
    the other two answers, written into what is by then the WebSocket's byte stream (and the
    HTTP protocol's keep-alive timer, armed after the last of them, later closes the
    WebSocket's connection). Pipelined answers must come in request order (RFC 9112 9.3.2),
    and nothing but WebSocket frames may follow a 101."""
    handshake = (
        b"GET /graphql HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n" * 3 + handshake)
        received, _ = read_until_closed(connection, quiet=2)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
    assert statuses == [b"200", b"200", b"200", b"101"], f"answers in this order: {statuses}"


def test_the_body_of_a_request_with_an_upgrade_not_taken_is_not_read_as_a_request(
    gateway: GatewayProcess,
) -> None:
    """Attack (request smuggling): POST /graphql with `Upgrade: foo` (any protocol but
    websocket; curl sends `Upgrade: h2c` with --http2) and a Content-Length body that is itself
    a whole request, the body in a packet of its own after the head. httptools stops at a
    request with an Upgrade header; uvicorn, taking no upgrade but websocket, answers the
    request as a plain one without its body and feeds the next packet to the parser as a new
    request: the body is served as a request of its own. A front end that passes `Upgrade`
    through (as a proxy set up for the WebSocket on /graphql does) forwards one request and
    gets two answers: the second is handed to whichever request comes next on that backend
    connection, another client's, and the smuggled request passed none of the front end's rules
    (README's "What a deployment must add" puts per-client limits and who reaches `/metrics` in
    the front end). One request must get one answer."""
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nConnection: Upgrade\r\nUpgrade: foo\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as connection:
        connection.sendall(head)
        time.sleep(0.5)  # the body in a read of its own, as a streaming front end sends it
        connection.sendall(smuggled)
        received, _ = read_until_closed(connection, quiet=2)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
    assert len(statuses) == 1, f"one request, answered {statuses}: {received[-200:]!r}"


def test_a_request_pipelined_after_one_with_an_upgrade_not_taken_is_answered(
    gateway: GatewayProcess,
) -> None:
    """Attack: one packet with GET /healthz carrying `Upgrade: h2c` (what curl --http2 sends to
    an http:// URL), then a plain GET /healthz. uvicorn takes no upgrade but websocket, answers
    the first as a plain request, and drops the rest of the packet: the second request is never
    answered, and the connection hangs until uvicorn's keep-alive idleness closes it. Pipelined
    requests must each get an answer, in order (RFC 9112 9.3.2)."""
    plain = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
    upgrading = (
        b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as connection:
        connection.sendall(upgrading + plain)
        received, _ = read_until_closed(connection, quiet=2)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
    assert statuses == [b"200", b"200"], f"two requests, answered {statuses}"


def test_an_empty_line_after_an_answer_does_not_keep_the_connection_forever(
    gateway: GatewayProcess,
) -> None:
    """Attack (slowloris, two bytes): GET /healthz, read the answer, send one empty line
    (CRLF), and nothing ever after. Any bytes cancel uvicorn's keep-alive timer; the parser
    skips empty lines before a request without beginning one, so the request read deadline is
    not started either: nothing is left to close the connection, which stays open for good
    (over 30 s on a gateway with a 10 s deadline and uvicorn's 5 s keep-alive). README's "Slow
    clients": "A request must arrive whole ... within EHRGW_REQUEST_READ_TIMEOUT_S of its first
    byte, or of the connection for a client that sends nothing, else the connection is
    closed": a thousand such connections take every descriptor, as README says dripped
    headers did."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            answer += connection.recv(1 << 16)
        connection.sendall(b"\r\n")
        connection.settimeout(READ_TIMEOUT_S + KEEP_ALIVE_S + 9)
        try:
            closed = connection.recv(1024) == b""
        except TimeoutError:
            closed = False
        except ConnectionResetError:
            closed = True
    assert closed, "the connection was still open long past the read deadline and keep-alive"
