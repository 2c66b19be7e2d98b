"""With ``EHRGW_LOG_FORMAT=text`` a log line is one line, whatever the client sent: a newline in
a tenant id or a token's subject is written escaped, so it cannot start a line of its own that
reads as another (forged) log entry."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from ehr_gateway.runtime import dev_tokens
from tests.documents import READ_VERSION
from tests.processes import GatewayProcess, started_gateway

FORGED = "2099-01-01 00:00:00,000 WARNING ehr_gateway.audit [-] forged"


@pytest.fixture(scope="module")
def gateway(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path_factory.mktemp("text_logs"), database_url, EHRGW_LOG_FORMAT="text"
    ) as process:
        yield process


def logged_access(gateway: GatewayProcess, request_id: str) -> str:
    """The log, once it has the request's access line (written just after the response)."""
    deadline = time.monotonic() + 5
    while f"[{request_id}] POST /graphql" not in gateway.printed():
        assert time.monotonic() < deadline, gateway.printed()
        time.sleep(0.02)
    return gateway.printed()


def test_a_newline_sent_by_a_client_does_not_start_a_log_line(gateway: GatewayProcess) -> None:
    token = dev_tokens.mint(
        gateway.data_dir,
        tenants=["acme"],
        roles=["viewer"],
        subject=f"mallory\n{FORGED} subject",
    )
    request_id = f"inject-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": READ_VERSION, "variables": {"tenantId": f"other\n{FORGED} tenant\u2028"}},
        headers={"authorization": f"Bearer {token}", "x-request-id": request_id},
        timeout=10,
    )

    assert response.status_code == 200
    log = logged_access(gateway, request_id)
    assert not [line for line in log.splitlines() if line.startswith("2099-")]
    denial = [line for line in log.splitlines() if f"[{request_id}] denied" in line]
    assert len(denial) == 1
    # The subject, newline and all, stays inside the one denial line, escaped.
    assert "mallory" in denial[0] and f"{FORGED} subject" in denial[0]
