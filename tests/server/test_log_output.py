"""A real ``ehr-gateway serve``'s log on its standard output: every line is there when SIGTERM
stops the process right after its last answer, each refused request's refusal line before its
access line; and when nobody reads standard output, requests wait for it rather than the
process holding their lines without bound, and go on once it is read again."""

from __future__ import annotations

import asyncio
import fcntl
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx

from ehr_gateway.server.log_output import DEFAULT_LIMIT
from tests.documents import READ_VERSION
from tests.processes import GatewayProcess

REQUESTS = 300
# Far more access lines than a pipe, the reader's one read and the log's buffer hold together.
MOST_ANSWERED_UNREAD = 2000
F_GETPIPE_SZ = 1032  # Linux: a pipe's capacity
READ_CHUNK = 1 << 16  # what GatewayProcess reads at once


def access_lines(printed: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in (json.loads(line) for line in printed.splitlines() if line.startswith("{"))
        if entry["logger"] == "ehr_gateway.access"
    ]


async def send_all(gateway: GatewayProcess, prefix: str) -> list[str]:
    """REQUESTS reads over 32 connections, a third of them without a token (refused); their
    request ids, once every one is answered."""
    ids = [f"{prefix}-{n}" for n in range(REQUESTS)]
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=60) as client:

        async def read(request_id: str, n: int) -> None:
            headers = {"x-request-id": request_id}
            if n % 3:
                headers["authorization"] = f"Bearer {gateway.token}"
            response = await client.post(
                "/graphql",
                json={"query": READ_VERSION, "variables": {"tenantId": "acme"}},
                headers=headers,
            )
            assert response.status_code == (200 if n % 3 else 401)

        await asyncio.gather(*(read(rid, n) for n, rid in enumerate(ids)))
    return ids


async def test_sigterm_right_after_the_last_answer_loses_no_line(
    database_url: str, tmp_path: Path
) -> None:
    gateway = GatewayProcess(
        tmp_path, EHRGW_MONGODB_URL=database_url, EHRGW_DATABASE=f"logs_{uuid.uuid4().hex[:8]}"
    )
    try:
        ids = await send_all(gateway, f"stop-{uuid.uuid4().hex[:6]}")
    finally:
        printed = gateway.stop()

    assert gateway.exited_by_itself, printed
    entries = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    logged = [entry.get("requestId") for entry in access_lines(printed)]
    assert sorted(logged) == sorted(ids)
    for n, request_id in enumerate(ids):
        own = [entry["logger"] for entry in entries if entry.get("requestId") == request_id]
        expected = ["ehr_gateway.access"] if n % 3 else ["ehr_gateway.http", "ehr_gateway.access"]
        assert own == expected, (request_id, own)


class UnreadGateway(GatewayProcess):
    """A gateway whose standard output is not read while ``reading`` is clear (a log shipper
    that stopped). The reader may be inside one read already when it is cleared."""

    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.reading = threading.Event()
        self.reading.set()
        super().__init__(data_dir, **settings)

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while self.reading.wait() and (chunk := stream.read1(READ_CHUNK)):
            with self._lock:
                self._printed += chunk


def test_a_log_nobody_reads_makes_requests_wait_until_it_is_read(
    database_url: str, tmp_path: Path
) -> None:
    gateway = UnreadGateway(
        tmp_path, EHRGW_MONGODB_URL=database_url, EHRGW_DATABASE=f"logs_{uuid.uuid4().hex[:8]}"
    )
    try:
        assert gateway.process.stdout is not None
        pipe_size = fcntl.fcntl(gateway.process.stdout.fileno(), F_GETPIPE_SZ)
        headers = {"authorization": f"Bearer {gateway.token}"}
        gateway.reading.clear()
        answered = 0
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=5) as client:
            try:
                while answered < MOST_ANSWERED_UNREAD:
                    client.post(
                        "/graphql",
                        json={"query": READ_VERSION, "variables": {"tenantId": "acme"}},
                        headers={"x-request-id": f"unread-{answered}"},
                    ).raise_for_status()
                    answered += 1
            except httpx.TimeoutException:
                pass  # the gateway waits for its log to be read
        assert answered < MOST_ANSWERED_UNREAD, "requests never waited for the log"

        waiting: list[int] = []
        late = threading.Thread(
            target=lambda: waiting.append(
                httpx.post(
                    f"{gateway.url}/graphql",
                    json={"query": READ_VERSION, "variables": {"tenantId": "acme"}},
                    headers={**headers, "x-request-id": "after-the-pause"},
                    timeout=60,
                ).status_code
            )
        )
        late.start()
        gateway.reading.set()
        late.join(60)
        assert waiting == [200]
    finally:
        printed = gateway.stop()

    assert gateway.exited_by_itself, printed[-2000:]
    logged = [entry.get("requestId") for entry in access_lines(printed)]
    # Every answered request's line, in order: none was dropped to keep requests going.
    assert [rid for rid in logged if rid.startswith("unread-")][:answered] == [
        f"unread-{n}" for n in range(answered)
    ]
    assert "after-the-pause" in logged
    # What the process held meanwhile: no more than the pipe, the reader's one read and the
    # log's buffer (the last answer's line is the one that waits).
    shortest = min(len(line) + 1 for line in printed.splitlines() if '"unread-' in line)
    assert (answered - 1) * shortest <= pipe_size + READ_CHUNK + DEFAULT_LIMIT
