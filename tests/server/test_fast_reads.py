"""The whole-request fast path for settings reads (gql.fast_reads, server.fast_path) changes
nothing a caller, an operator or the response cache can see: a document the gateway has run once
is answered without Strawberry or graphql-core, with the same bytes, status and headers as the
generic path (``compiled_reads=False``), and every request it does not answer itself (a caller
without the permission, another tenant's id, a variable that does not fit, an expired token, a
request over the limits) is answered by the generic path as before, the refusal audited.

Two apps share one database and signing key: ``fast`` (the default) and ``generic``."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ehr_gateway.gql import fast_reads
from ehr_gateway.runtime import dev_tokens
from ehr_gateway.server.logs import ACCESS_LOGGER
from tests.conftest import Gateway, gateway_app, gateway_config, open_gateway
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER

VERSION = """
query Version($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version provider } }
"""
THREE_ALIASES = """
query Three($tenantId: ID!) {
  a: integrationSettings(tenantId: $tenantId) { version }
  b: integrationSettings(tenantId: $tenantId) { version }
  c: integrationSettings(tenantId: $tenantId) { version }
}
"""
AUDIT_LOG = """
query Audit($tenantId: ID!) {
  auditLog(tenantId: $tenantId) { entries { outcome operation subject missingPermission } }
}
"""
GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass
class Apps:
    fast: Gateway
    generic: Gateway
    tenant: str


@pytest.fixture
async def apps(database_url: str, tmp_path: Path) -> AsyncIterator[Apps]:
    tenant = f"fast-{uuid.uuid4().hex[:8]}"
    # Both apps are shut down here, awaited, the second first.
    async with contextlib.AsyncExitStack() as opened:
        fast, generic = [
            await opened.enter_async_context(
                gateway_app(
                    gateway_config(
                        database_url, tmp_path, response_cache=False, compiled_reads=flag,
                        max_aliases=2,
                    )
                )
            )
            for flag in (True, False)
        ]  # fmt: skip
        await fast.execute(SELECT_PROVIDER, tenantId=tenant, provider="EPIC")
        yield Apps(fast, generic, tenant)


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


async def send(
    gateway: Gateway,
    document: str,
    variables: dict[str, Any],
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    response = await gateway.client.post(
        "/graphql",
        content=json.dumps({"query": document, "variables": variables}),
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {token or gateway.token}",
            **(headers or {}),
        },
    )
    kept = [(k, b"" if k == b"x-request-id" else v) for k, v in response.headers.raw]
    return response.status_code, response.content, kept


async def same(
    apps: Apps, document: str, variables: dict[str, Any], **options: Any
) -> tuple[Answer, str]:
    """``document`` sent to both apps (the fast one twice before: the first run admits it, and
    a second shows the fast path answers it); fails unless the answers are equal. The answer,
    and what the fast path did with the last request."""
    await send(apps.fast, document, variables)
    await send(apps.fast, document, variables)
    before = dict(fast_reads.outcomes)
    got = await send(apps.fast, document, variables, **options)
    expected = await send(apps.generic, document, variables, **options)
    assert got == expected, f"fast: {got!r}\ngeneric: {expected!r}"
    (changed,) = [k for k, v in fast_reads.outcomes.items() if v != before.get(k, 0)] or ["none"]
    return got, changed


async def test_a_settings_read_run_before_is_answered_by_the_fast_path(apps: Apps) -> None:
    (status, body, headers), outcome = await same(
        apps, INTEGRATION_SETTINGS, {"tenantId": apps.tenant}
    )

    assert outcome == "answered"
    assert status == 200
    assert json.loads(body)["data"]["integrationSettings"]["provider"] == "EPIC"
    assert [name for name, _ in headers] == [b"content-length", b"content-type", b"x-request-id"]


async def test_the_graphql_response_media_type_is_kept(apps: Apps) -> None:
    (status, _, headers), outcome = await same(
        apps, VERSION, {"tenantId": apps.tenant}, headers={"accept": GRAPHQL_RESPONSE}
    )

    assert (status, outcome) == (200, "answered")
    assert (b"content-type", GRAPHQL_RESPONSE.encode()) in headers


async def test_a_caller_without_the_permission_is_refused_and_audited_as_before(
    apps: Apps,
) -> None:
    no_roles = dev_tokens.mint(
        apps.fast.config.data_dir, tenants=[apps.tenant], roles=[], subject="nobody"
    )

    (status, body, _), outcome = await same(
        apps, VERSION, {"tenantId": apps.tenant}, token=no_roles
    )

    assert (status, outcome) == (200, "refused")  # left to the resolver: it refuses, audits
    answer = json.loads(body)
    assert answer["data"] == {"integrationSettings": None}
    assert answer["errors"][0]["extensions"] == {"code": "FORBIDDEN", "permission": "settings:read"}
    entries = (await apps.fast.execute(AUDIT_LOG, tenantId=apps.tenant))["auditLog"]["entries"]
    assert {"outcome": "DENIED", "operation": "integrationSettings", "subject": "nobody",
            "missingPermission": "settings:read"} in entries  # fmt: skip


async def test_another_tenants_id_is_refused_as_before(apps: Apps) -> None:
    stranger = apps.fast.as_caller(tenants=["someone-else"], roles=["viewer"]).token

    (status, body, _), outcome = await same(
        apps, VERSION, {"tenantId": apps.tenant}, token=stranger
    )

    assert (status, outcome) == (200, "refused")
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_unknown_tenant_reads_as_null(apps: Apps) -> None:
    (status, body, _), outcome = await same(apps, VERSION, {"tenantId": "nobody-here"})

    assert (status, outcome) == (200, "answered")
    assert json.loads(body) == {"data": {"integrationSettings": None}}


@pytest.mark.parametrize(
    "variables",
    [{}, {"tenantId": {"id": 1}}, {"tenantId": None}, {"tenantId": ["a", "b"]}],
    ids=["missing", "object", "null", "list"],
)
async def test_variables_that_do_not_fit_are_refused_as_before(
    apps: Apps, variables: dict[str, Any]
) -> None:
    await send(apps.fast, VERSION, {"tenantId": apps.tenant})  # admitted
    before = fast_reads.outcomes["answered"]

    for accept in ("application/json", GRAPHQL_RESPONSE):
        got = await send(apps.fast, VERSION, variables, headers={"accept": accept})
        expected = await send(apps.generic, VERSION, variables, headers={"accept": accept})
        assert got == expected

    assert fast_reads.outcomes["answered"] == before


async def test_an_expired_token_is_refused_as_before(apps: Apps) -> None:
    expired = dev_tokens.mint(
        apps.fast.config.data_dir, tenants=[apps.tenant], roles=["viewer"], ttl_s=-3600
    )

    (status, body, _), outcome = await same(apps, VERSION, {"tenantId": apps.tenant}, token=expired)

    assert status == 401
    assert outcome == "none"  # refused by the gate, before any path
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_document_over_the_limits_is_never_admitted(apps: Apps) -> None:
    (status, body, _), outcome = await same(apps, THREE_ALIASES, {"tenantId": apps.tenant})

    assert (status, outcome) == (200, "not admitted")
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_json_nested_too_deep_is_refused_as_before(apps: Apps) -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]

    (status, body, _), outcome = await same(apps, VERSION, {"tenantId": apps.tenant, "d": deep})

    assert (status, outcome) == (400, "not a plain request")
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_the_request_id_access_log_line_and_metrics_are_as_before(
    apps: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    await send(apps.fast, VERSION, {"tenantId": apps.tenant})  # admitted
    before = fast_reads.outcomes["answered"]
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    # Only these two requests: the admitting one above is captured too whenever an earlier test
    # of the session left the access logger at INFO.
    caplog.clear()

    for app in (apps.fast, apps.generic):
        response = await app.client.post(
            "/graphql",
            json={"query": VERSION, "variables": {"tenantId": apps.tenant}},
            headers={"authorization": f"Bearer {app.token}", "x-request-id": "read-42"},
        )
        assert response.headers["x-request-id"] == "read-42"

    assert fast_reads.outcomes["answered"] == before + 1
    lines = [
        (r.method, r.path, r.status, r.operation, r.cache)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == ACCESS_LOGGER
    ]
    assert lines == [("POST", "/graphql", 200, "query:integrationSettings", None)] * 2
    counted = 'ehrgw_http_requests_total{operation="query:integrationSettings",status="200"}'
    for app in (apps.fast, apps.generic):
        metrics = (await app.client.get("/metrics")).text
        assert counted in metrics


async def test_the_response_cache_keeps_what_the_fast_path_answered(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = f"cached-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async for gateway in open_gateway(gateway_config(database_url, tmp_path)):
        await gateway.execute(SELECT_PROVIDER, tenantId=tenant, provider="EPIC")
        first = await send(gateway, VERSION, {"tenantId": tenant})  # run, admitted, kept
        # A save drops the kept answer: the next read is a miss, which the fast path answers.
        await gateway.execute(SELECT_PROVIDER, tenantId=tenant, provider="CERNER")
        before = fast_reads.outcomes["answered"]
        missed = await send(gateway, VERSION, {"tenantId": tenant})
        answered = fast_reads.outcomes["answered"] - before
        hit = await send(gateway, VERSION, {"tenantId": tenant})

    assert answered == 1
    assert json.loads(first[1])["data"]["integrationSettings"]["provider"] == "EPIC"
    assert json.loads(missed[1])["data"]["integrationSettings"] == {
        "version": 2, "provider": "CERNER",
    }  # fmt: skip
    assert hit[:2] == missed[:2]  # (a hit's headers come in another order, as they always did)
    caches = [r.cache for r in caplog.records if r.name == ACCESS_LOGGER]  # type: ignore[attr-defined]
    assert caches[-2:] == ["miss", "hit"]
