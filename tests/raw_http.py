"""HTTP/1.1 over raw sockets to a gateway process, for what an HTTP client would not send or would
hide: pipelined and malformed requests, clients that stall or never read, and whether the gateway
then closes the connection."""

from __future__ import annotations

import re
import socket

from tests.processes import GatewayProcess

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"


def connect(gateway: GatewayProcess, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=timeout)


def non_reading_connection(gateway: GatewayProcess) -> socket.socket:
    """A connection whose client takes almost nothing off the wire: a small receive buffer,
    never read."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.connect(("127.0.0.1", gateway.port))
    return connection


def read_healthz_answer(connection: socket.socket) -> bytes:
    """The answer to HEALTHZ, read to the end of its JSON body (the connection stays open)."""
    answer = b""
    while not answer.endswith(b"}"):
        answer += connection.recv(1 << 16)
    return answer


def read_until_closed(connection: socket.socket, quiet: float) -> tuple[bytes, bool]:
    """Everything the gateway sends until it closes (True) or is quiet for ``quiet`` s (False)."""
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


def statuses(received: bytes) -> list[bytes]:
    """The status code of each answer in ``received``, in order."""
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
