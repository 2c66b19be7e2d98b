"""Block updates answered by the whole-request fast path (gql.fast_writes) answer exactly what
the generic path answers, and do exactly what it does.

Two gateway apps, each on a database of its own, one with the fast path (the default), the
other running every request through Strawberry and graphql-core (``compiled_reads=False``),
both with the response cache off, get the same sequence of requests, each as the same caller.
Each pair of answers must be the same bytes, status and headers; at the end, so must what
each database holds (settings, history entries, audit entries with the denials, the
idempotency keys stored with their versions; request ids, times and the chains' hashes aside)
and the changes a subscriber of each app was sent. Each request's outcome in the fast path is
checked too, so that the comparison is known to cover requests it answered, and requests it
must leave to the generic path (refused callers, keys, variables, other documents).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from ehr_gateway.gql import fast_writes
from ehr_gateway.server.app import create_app
from ehr_gateway.storage.embedded import EmbeddedMongo
from tests.conftest import Gateway, gateway_config
from tests.documents import SELECT_PROVIDER, UPDATE_EHR, UPDATE_FHIR
from tests.faults._database import stalled
from tests.processes import TransportWsClient
from tests.servers import serve_on_loopback

# The write benchmark's (bench/writes.py): an input written in the document, the payload by
# inline fragments.
CONTEXT_WRITE = """
mutation Write($tenantId: ID!, $context: String!, $expected: Int) {
  updateEhrSettings(
    tenantId: $tenantId, input: {epic: {context: $context}}, expectedVersion: $expected
  ) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on VersionConflict { currentVersion }
    ... on ValidationFailed { errors { code path } }
  }
}
"""
ALIASED = """
mutation Aliased($tenantId: ID!, $context: String!) {
  saved: updateEhrSettings(tenantId: $tenantId, input: {epic: {context: $context}}) {
    kind: __typename
    ... on SettingsSaved { now: settings { v: version ehr { __typename } } }
  }
}
"""
CONDITIONS = """
mutation Conditions($tenantId: ID!, $context: String!, $skip: Boolean!, $full: Boolean!) {
  updateEhrSettings(tenantId: $tenantId, input: {epic: {context: $context}}) @skip(if: $skip) {
    __typename
    ... on SettingsSaved {
      settings { version provider @include(if: $full) }
    }
  }
}
"""
TWO_ROOT_FIELDS = """
mutation Two($tenantId: ID!, $context: String!, $url: String!) {
  updateEhrSettings(tenantId: $tenantId, input: {epic: {context: $context}}) { __typename }
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $url}}) { __typename }
}
"""
NAMED_OPERATIONS = """
query Read($tenantId: ID!) { integrationSettings(tenantId: $tenantId) { version } }
mutation Write($tenantId: ID!, $context: String!) {
  updateEhrSettings(tenantId: $tenantId, input: {epic: {context: $context}}) {
    __typename ... on SettingsSaved { settings { version } }
  }
}
"""
INLINE_KEY = """
mutation InlineKey($tenantId: ID!, $context: String!, $key: String) {
  updateEhrSettings(
    tenantId: $tenantId, input: {epic: {context: $context}}, idempotencyKey: $key
  ) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { code path message } }
  }
}
"""
# What a subscriber of the tenant's changes is sent (times aside: see _changes).
CHANGES = """
subscription Changes($tenantId: ID!, $sinceVersion: Int) {
  configurationChanged(tenantId: $tenantId, sinceVersion: $sinceVersion) {
    tenantId version changedBlocks actor versionsSkipped
    settings { version provider ehr { ... on EpicSettings { context } } }
  }
}
"""
METRICS_TOKEN = "metrics-token-for-the-test"
# Fields that differ between two gateways doing the same thing: request ids, times, the chains
# (hashes over the times) and the directory's change order (a time).
_VOLATILE = frozenset(
    {"requestId", "at", "changedAt", "updatedAt", "listedAt", "byChange", "order", "chain",
     "seal"}
)  # fmt: skip


# The times two gateways stored the same change at (in answers: same length, other digits).
_TIMES = re.compile(rb'"(updatedAt|changedAt)":"[0-9T:.+-]{32}"')


@dataclass
class App:
    gateway: Gateway
    database: str
    ws_url: str


@dataclass
class Pair:
    fast: App
    generic: App
    database_url: str
    staff: str
    tokens: dict[str, str]


@contextlib.asynccontextmanager
async def _app(
    database_url: str, data_dir: Path, *, fast: bool, **overrides: Any
) -> AsyncIterator[App]:
    database = f"fast_writes_{'fast' if fast else 'generic'}_{uuid.uuid4().hex[:8]}"
    config = gateway_config(
        database_url, data_dir, response_cache=False, compiled_reads=fast, **overrides
    ).model_copy(update={"database": database})
    app = create_app(config)
    async with app.router.lifespan_context(app), serve_on_loopback(app) as url:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield App(Gateway(client, config), database, f"ws{url[4:]}/graphql")


@contextlib.asynccontextmanager
async def _pair(database_url: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Pair]:
    overrides = {"metrics_token": METRICS_TOKEN, **overrides}
    async with (
        _app(database_url, data_dir, fast=True, **overrides) as fast,
        _app(database_url, data_dir, fast=False, **overrides) as generic,
    ):
        gateway = fast.gateway
        tokens = {
            "viewer": gateway.as_caller(tenants=["t-a"], roles=["viewer"], subject="v").token,
            "editor": gateway.as_caller(tenants=["t-a"], roles=["editor"], subject="e").token,
            "other tenant": gateway.as_caller(
                tenants=["t-b"], roles=["editor", "integrator"], subject="o"
            ).token,
        }
        yield Pair(fast, generic, database_url, gateway.token, tokens)


@pytest.fixture
async def pair(database_url: str, tmp_path: Path) -> AsyncIterator[Pair]:
    async with _pair(database_url, tmp_path) as opened:
        yield opened


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


Headers = list[tuple[str, str]]


async def _answer(gateway: Gateway, body: dict[str, Any], token: str, headers: Headers) -> Answer:
    response = await gateway.client.post(
        "/graphql",
        content=json.dumps(body),
        headers=[
            ("content-type", "application/json"),
            ("authorization", f"Bearer {token}"),
            *headers,
        ],
    )
    kept = [(k, b"" if k == b"x-request-id" else v) for k, v in response.headers.raw]
    return response.status_code, _TIMES.sub(rb'"\1":"(a time)"', response.content), kept


async def both(
    pair: Pair,
    body: dict[str, Any],
    *,
    token: str | None = None,
    headers: Headers | None = None,
    outcome: str,
) -> dict[str, Any]:
    """``body`` sent to the fast app, then to the generic one; fails unless both answers are
    the same, and unless the fast path's outcome for it was ``outcome`` ("": the request was
    not this path's to try: a text not yet admitted, a query, a request it cannot read). The
    answer."""
    caller = token if token is not None else pair.staff
    before = Counter(fast_writes.outcomes)
    got = await _answer(pair.fast.gateway, body, caller, headers or [])
    happened = Counter(fast_writes.outcomes)
    happened.subtract(before)
    expected = await _answer(pair.generic.gateway, body, caller, headers or [])
    assert got == expected, f"{json.dumps(body)}\nfast: {got!r}\ngeneric: {expected!r}"
    assert +happened == Counter({outcome: 1}) or (outcome == "" and not +happened), (
        f"{json.dumps(body['variables'])}: {+happened}, {got[1][:300]!r}"
    )
    answer: dict[str, Any] = json.loads(got[1])
    return answer


def _request(document: str, operation_name: str | None = None, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": document, "variables": variables}
    if operation_name is not None:
        body["operationName"] = operation_name
    return body


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        # Ids made up per entry (a history entry's ObjectId, a denial's random id) aside.
        made_up = not isinstance(value.get("_id"), str) or value.get("outcome") == "DENIED"
        return {
            k: _normal(v)
            for k, v in value.items()
            if k not in _VOLATILE and not (k == "_id" and made_up)
        }
    if isinstance(value, list):
        return [_normal(each) for each in value]
    return value


async def _stored(database_url: str, database: str) -> dict[str, list[Any]]:
    """Every document of every collection, in the order stored, times and hashes aside."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        stored = {}
        for name in sorted(await client[database].list_collection_names()):
            found = client[database][name].find().sort([("seq", 1), ("_id", 1)])
            documents = await found.to_list()
            stored[name] = [_normal(document) for document in documents]
        return stored
    finally:
        await client.close()


async def same_effects(pair: Pair) -> dict[str, list[Any]]:
    fast = await _stored(pair.database_url, pair.fast.database)
    generic = await _stored(pair.database_url, pair.generic.database)
    assert fast.keys() == generic.keys()
    for name in fast:
        assert fast[name] == generic[name], name
    return fast


async def _requests_counted(app: App) -> list[str]:
    """The requests counted by operation label and status (gate.RequestGate: the record's
    operation, noted by note_operation)."""
    response = await app.gateway.client.get(
        "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200, response.text
    return [line for line in response.text.splitlines() if line.startswith("ehrgw_http_requests")]


async def _subscribe(app: App, token: str, tenant_id: str) -> TransportWsClient:
    subscriber = await TransportWsClient.connect(app.ws_url, token=token)
    await subscriber.subscribe("changes", CHANGES, tenantId=tenant_id, sinceVersion=1)
    return subscriber


async def _changes(subscriber: TransportWsClient, count: int) -> list[dict[str, Any]]:
    received = [
        (await subscriber.next_data("changes"))["configurationChanged"] for _ in range(count)
    ]
    await subscriber.close()
    return received


async def test_block_updates_answer_and_do_what_the_generic_path_does(pair: Pair) -> None:
    tenant = "t-a"
    await both(pair, _request(SELECT_PROVIDER, tenantId=tenant, provider="EPIC"), outcome="")
    subscribers = [await _subscribe(app, pair.staff, tenant) for app in (pair.fast, pair.generic)]
    # The first request of a text runs in the generic path, which admits it.
    write = _request(CONTEXT_WRITE, tenantId=tenant, context="c-1", expected=1)
    assert (await both(pair, write, outcome=""))["data"]["updateEhrSettings"] == {
        "__typename": "SettingsSaved",
        "settings": {"version": 2},
    }
    # Saved; the same at the version it replaced: a conflict; at the new version: a no-op;
    # saved without a version.
    write = _request(CONTEXT_WRITE, tenantId=tenant, context="c-2", expected=2)
    await both(pair, write, outcome="answered")
    saved = await both(pair, write, outcome="answered")
    assert saved["data"]["updateEhrSettings"]["__typename"] == "VersionConflict", saved
    write = _request(CONTEXT_WRITE, tenantId=tenant, context="c-2", expected=3)
    saved = await both(pair, write, outcome="answered")
    assert saved["data"]["updateEhrSettings"] == {
        "__typename": "SettingsSaved",
        "settings": {"version": 3},
    }
    write = _request(CONTEXT_WRITE, tenantId=tenant, context="c-3", expected=None)
    await both(pair, write, outcome="answered")
    # Refused by validation (the whole settings in the payload, by named fragments).
    await both(
        pair, _request(UPDATE_FHIR, tenantId=tenant, input={"epic": {"urlPrefix": "/r4"}}),
        outcome="",
    )  # fmt: skip
    refused = await both(
        pair,
        _request(UPDATE_FHIR, tenantId=tenant, input={"epic": {"dayRangeForTemporalSearches": -1}}),
        outcome="answered",
    )
    assert refused["data"]["updateFhirSettings"]["__typename"] == "ValidationFailed", refused
    refused = await both(
        pair, _request(UPDATE_FHIR, tenantId=tenant, input={"athena": {"useBatch": True}}),
        outcome="answered",
    )  # fmt: skip
    assert refused["data"]["updateFhirSettings"]["__typename"] == "ValidationFailed", refused
    saved = await both(
        pair, _request(UPDATE_EHR, tenantId=tenant, input={"epic": {"context": "whole"}}),
        outcome="",
    )  # fmt: skip
    saved = await both(
        pair, _request(UPDATE_EHR, tenantId=tenant, input={"epic": {"context": "whole-2"}}),
        outcome="answered",
    )  # fmt: skip
    assert saved["data"]["updateEhrSettings"]["settings"]["ehr"]["context"] == "whole-2"

    # Idempotency: a key in the header, retried; the same key with another request; a key as
    # the argument; keys the extension refuses (generic).
    key = [("idempotency-key", f"key-{uuid.uuid4().hex}")]
    write = _request(CONTEXT_WRITE, tenantId=tenant, context="k-1")
    first = await both(pair, write, headers=key, outcome="answered")
    assert await both(pair, write, headers=key, outcome="answered") == first
    other = _request(CONTEXT_WRITE, tenantId=tenant, context="k-2")
    reused = await both(pair, other, headers=key, outcome="answered")
    assert reused["data"]["updateEhrSettings"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    inline = _request(INLINE_KEY, tenantId=tenant, context="k-3", key=f"k-{uuid.uuid4().hex}")
    await both(pair, inline, outcome="")
    inline["variables"]["context"] = "k-4"
    await both(pair, inline, outcome="answered")
    await both(pair, inline, outcome="answered")  # the retry
    for refused_key in ("", "a key with spaces"):
        inline["variables"]["key"] = refused_key
        answer = await both(pair, inline, outcome="idempotency key")
        assert answer["data"]["updateEhrSettings"]["__typename"] == "ValidationFailed"
    inline["variables"]["key"] = "agrees-not"
    answer = await both(
        pair, inline, headers=[("idempotency-key", "other")], outcome="idempotency key"
    )
    assert answer["data"]["updateEhrSettings"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    two_keys = [("idempotency-key", "a"), ("idempotency-key", "b")]
    answer = await both(pair, write, headers=two_keys, outcome="idempotency key")
    assert answer["data"]["updateEhrSettings"]["errors"][0]["code"] == "INVALID_IDEMPOTENCY_KEY"

    # Refused callers: generic, before anything happened (their denials are recorded there).
    write = _request(CONTEXT_WRITE, tenantId=tenant, context="denied")
    for name in ("viewer", "other tenant"):
        denied = await both(pair, write, token=pair.tokens[name], outcome="refused")
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", denied
    # An editor may change the EHR settings.
    editor = await both(
        pair, _request(CONTEXT_WRITE, tenantId=tenant, context="by-editor"),
        token=pair.tokens["editor"], outcome="answered",
    )  # fmt: skip
    assert editor["data"]["updateEhrSettings"]["__typename"] == "SettingsSaved"

    # Variables that do not coerce: generic.
    for variables in (
        {"tenantId": tenant, "context": "x", "expected": "one"},
        {"tenantId": tenant, "context": 5},
        {"tenantId": tenant},
        {"tenantId": tenant, "context": "x", "expected": 2**40},
    ):
        answer = await both(pair, _request(CONTEXT_WRITE, **variables), outcome="variables")
        assert "data" not in answer or answer["data"] is None, answer

    # Aliases; conditions; two root fields; operations chosen by name.
    await both(pair, _request(ALIASED, tenantId=tenant, context="al-1"), outcome="")
    aliased = await both(
        pair, _request(ALIASED, tenantId=tenant, context="al-2"), outcome="answered"
    )
    assert aliased["data"]["saved"]["now"]["ehr"] == {"__typename": "EpicSettings"}, aliased
    conditions = {"tenantId": tenant, "context": "co-1", "skip": False, "full": False}
    await both(pair, _request(CONDITIONS, **conditions), outcome="")
    for skip, full, outcome in (
        (False, True, "answered"), (False, False, "answered"), (True, False, "not one root field"),
    ):  # fmt: skip
        conditions.update(skip=skip, full=full, context=f"co-{skip}-{full}")
        await both(pair, _request(CONDITIONS, **conditions), outcome=outcome)
    two = _request(TWO_ROOT_FIELDS, tenantId=tenant, context="two", url="/two")
    await both(pair, two, outcome="")  # admitted: it ran without errors
    await both(pair, two, outcome="not one root field")
    named = _request(NAMED_OPERATIONS, "Write", tenantId=tenant, context="named-1")
    await both(pair, named, outcome="")
    named["variables"]["context"] = "named-2"
    await both(pair, named, outcome="answered")
    unnamed = _request(NAMED_OPERATIONS, tenantId=tenant, context="named-3")
    await both(pair, unnamed, outcome="")  # which operation? the generic path's refusal
    await both(pair, _request(NAMED_OPERATIONS, "Read", tenantId=tenant), outcome="")

    # Requests with more than a document, its variables and an operation name: generic.
    persisted = {
        **_request(CONTEXT_WRITE, tenantId=tenant, context="apq"),
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}},
    }
    await both(pair, persisted, outcome="")
    await both(pair, {"documentId": "sha256:" + "0" * 64, "variables": {}}, outcome="")

    counted = await _requests_counted(pair.fast)
    assert counted == await _requests_counted(pair.generic)
    assert any('operation="mutation:updateEhrSettings"' in line for line in counted), counted
    stored = await same_effects(pair)
    # The viewer's denial (a caller of another tenant is not recorded in this tenant's log).
    assert [entry["outcome"] for entry in stored["audit_log"]].count("DENIED") == 1
    keys = [
        entry["idempotency"]
        for entry in stored["tenant_settings_history"]
        if "idempotency" in entry
    ]
    assert len(keys) == 2, keys  # the header's key and the argument's, each stored once
    settings = stored["tenant_settings"][0]
    versions = settings["version"]
    changes = [await _changes(each, versions - 1) for each in subscribers]
    assert changes[0] == changes[1]
    assert [change["version"] for change in changes[0]] == list(range(2, versions + 1))


async def test_a_database_error_in_the_resolver_is_answered_as_the_generic_path_answers_it(
    database: EmbeddedMongo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stalled while the resolver writes: the database deadline ends the write
    with an error, answered and logged by the error policy; when the database is back, both
    databases hold the same."""
    async with _pair(database.url, tmp_path, db_timeout_ms=400) as pair:
        tenant = "t-a"
        await both(pair, _request(SELECT_PROVIDER, tenantId=tenant, provider="EPIC"), outcome="")
        write = _request(CONTEXT_WRITE, tenantId=tenant, context="before")
        await both(pair, write, outcome="")
        write = _request(CONTEXT_WRITE, tenantId=tenant, context="stalled")
        caplog.set_level(logging.WARNING, "ehr_gateway.graphql")
        with stalled(database):
            failed = await both(pair, write, outcome="completed by graphql-core")
        logged = [r.getMessage() for r in caplog.records if r.name == "ehr_gateway.graphql"]
        assert len(logged) == 2 and logged[0] == logged[1], logged  # once by each app
        assert logged[0].startswith("database unavailable"), logged
        assert failed["data"] is None, failed
        assert failed["errors"][0]["extensions"] == {"code": "SERVICE_UNAVAILABLE"}, failed
        assert failed["errors"][0]["path"] == ["updateEhrSettings"], failed
        write = _request(CONTEXT_WRITE, tenantId=tenant, context="after")
        await both(pair, write, outcome="answered")
        await same_effects(pair)
