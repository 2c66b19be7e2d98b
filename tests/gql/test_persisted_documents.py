"""Persisted documents with the tools frontend teams use: Apollo Client's persisted-query link
(automatic persisted queries: a miss, a registration, then hashes only, over GET), and trusted
documents from manifests that GraphQL Code Generator and Apollo's manifest generator produce, run
by documentId or hash on a gateway that runs nothing else."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.runtime import dev_tokens
from tests.node_clients import SCRIPTS, run_node
from tests.processes import GatewayProcess, TransportWsClient

SCHEMA = Path(__file__).parents[2] / "schema.graphql"
OPERATIONS = SCRIPTS / "operations" / "*.graphql"

SETTINGS = """
query AdminPageSettings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { tenantId version provider }
}
"""
UNLISTED = """
query Unlisted($tenantId: ID!) { readiness(tenantId: $tenantId) { __typename } }
"""
TOO_DEEP = "query Deep { " + "a { " * 20 + "b" + " }" * 20 + " }"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}


def post(gateway: GatewayProcess, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/graphql",
        json=body,
        headers={"authorization": f"Bearer {token or gateway.token}"},
        timeout=10,
    )


def persisted_lookups(gateway: GatewayProcess) -> dict[str, float]:
    """Requests by hash or id that found their document (hit) or not (miss), from /metrics."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    found = re.findall(
        r'ehrgw_cache_lookups_total\{cache="persisted_documents",result="(\w+)"\} (\S+)', text
    )
    return {result: float(value) for result, value in found}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The admin page's operations (tests/js/operations) as Codegen's persisted documents and
    as Apollo's persisted-query manifest."""
    out = tmp_path_factory.mktemp("manifests")
    made = run_node("persisted_manifests.mjs", str(SCHEMA), str(OPERATIONS), str(out), env={})
    return {kind: Path(path) for kind, path in made.items()}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path)
    yield process
    process.stop()


def test_apollo_client_misses_registers_then_sends_only_the_hash(
    gateway: GatewayProcess,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    found = run_node(
        "persisted_query_link.mjs", "apq",
        env={"GATEWAY_URL": gateway.url, "TOKEN": gateway.token, "TENANT": tenant},
    )  # fmt: skip
    assert found["results"][1:] == [
        {"integrationSettings": {"__typename": "IntegrationSettings", "tenantId": tenant,
                                 "version": 1, "provider": "EPIC"}}
    ] * 3  # fmt: skip
    sent = found["sent"]
    # The mutation: hash only (a miss), then with its document (registered), over POST.
    assert [(r["method"], r["query"]) for r in sent[:2]] == [("POST", False), ("POST", True)]
    # The query: the same, its hash only over GET (useGETForHashedQueries); then hashes only.
    assert [(r["method"], r["query"]) for r in sent[2:]] == [
        ("GET", False), ("POST", True), ("GET", False), ("GET", False),
    ]  # fmt: skip
    assert all(r["hash"] for r in sent)
    assert persisted_lookups(gateway) == {"hit": 2.0, "miss": 2.0}


def test_a_hash_that_is_not_the_documents_is_refused_and_not_stored(
    gateway: GatewayProcess,
) -> None:
    hijack = {"persistedQuery": {"version": 1, "sha256Hash": sha256(SETTINGS)}}
    refused = post(gateway, {"query": UNLISTED, "variables": {"tenantId": "t1"},
                             "extensions": hijack})  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    by_hash = post(gateway, {"variables": {"tenantId": "t1"}, "extensions": hijack})
    assert by_hash.status_code == 200
    assert by_hash.json() == {
        "errors": [
            {"message": "PersistedQueryNotFound",
             "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
        ]
    }  # fmt: skip
    assert by_hash.headers["cache-control"] == "private, no-cache, must-revalidate"


def test_a_registration_that_fails_validation_is_not_kept(gateway: GatewayProcess) -> None:
    registering = post(gateway, {"query": TOO_DEEP, "extensions": persisted(TOO_DEEP)})
    assert registering.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    again = post(gateway, {"extensions": persisted(TOO_DEEP)})
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_a_codegen_manifest_runs_its_documents_by_id_and_nothing_else(
    tmp_path: Path, manifests: dict[str, Path]
) -> None:
    listed: dict[str, str] = json.loads(manifests["codegen"].read_text())
    settings_id = next(key for key, text in listed.items() if "AdminPageSettings" in text)
    select_id = next(key for key, text in listed.items() if "AdminPageSelectProvider" in text)
    assert settings_id.startswith("sha256:")
    gateway = GatewayProcess(
        tmp_path, EHRGW_TRUSTED_DOCUMENTS=str(manifests["codegen"]),
        EHRGW_TRUSTED_DOCUMENTS_ONLY="true",
    )  # fmt: skip
    try:
        athena = {"tenantId": "t1", "provider": "ATHENA"}
        selected = post(gateway, {"documentId": select_id, "variables": athena})
        assert selected.json() == {"data": {"selectEhrProvider": {"__typename": "SettingsSaved"}}}
        over_get = httpx.get(
            f"{gateway.url}/graphql",
            params={"documentId": settings_id, "variables": json.dumps({"tenantId": "t1"})},
            headers={"authorization": f"Bearer {gateway.token}"},
        )
        assert over_get.json() == {
            "data": {"integrationSettings": {"tenantId": "t1", "version": 1,
                                             "provider": "ATHENA"}}
        }  # fmt: skip

        unlisted = post(gateway, {"query": UNLISTED, "variables": {"tenantId": "t1"}})
        assert unlisted.status_code == 403
        assert unlisted.json()["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        # Registering a document by hash is no way around the list.
        registering = post(gateway, {"query": UNLISTED, "variables": {"tenantId": "t1"},
                                     "extensions": persisted(UNLISTED)})  # fmt: skip
        assert registering.status_code == 403
        unknown = post(gateway, {"documentId": "sha256:" + sha256(UNLISTED)})
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_DOCUMENT_NOT_FOUND"
        # Introspection (GraphiQL's schema fetch) is a document like any other.
        introspection = post(gateway, {"query": "{ __schema { queryType { name } } }"})
        assert introspection.status_code == 403

        # A trusted document is not a permission: a viewer may read, not write.
        viewer = dev_tokens.mint(tmp_path, tenants=["t1"], roles=["viewer"], subject="v")
        epic = {"tenantId": "t1", "provider": "EPIC"}
        refused = post(gateway, {"documentId": select_id, "variables": epic}, viewer)
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        gateway.stop()


async def test_over_websocket_only_listed_documents_run(
    tmp_path: Path, manifests: dict[str, Path]
) -> None:
    gateway = GatewayProcess(
        tmp_path, EHRGW_TRUSTED_DOCUMENTS=str(manifests["codegen"]),
        EHRGW_TRUSTED_DOCUMENTS_ONLY="true",
    )  # fmt: skip
    try:
        client = await TransportWsClient.connect(gateway.ws_url, token=gateway.token)
        try:
            await client.subscribe("1", UNLISTED, tenantId="t1")
            answer = await client.receive()
        finally:
            await client.close()
        assert answer["type"] == "error", answer
        assert answer["payload"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    finally:
        gateway.stop()


def test_apollo_client_runs_an_apollo_manifest_by_id_only(
    tmp_path: Path, manifests: dict[str, Path]
) -> None:
    gateway = GatewayProcess(
        tmp_path, EHRGW_TRUSTED_DOCUMENTS=str(manifests["apollo"]),
        EHRGW_TRUSTED_DOCUMENTS_ONLY="true",
    )  # fmt: skip
    try:
        found = run_node(
            "persisted_query_link.mjs", "manifest", str(manifests["apollo"]),
            env={"GATEWAY_URL": gateway.url, "TOKEN": gateway.token, "TENANT": "t2"},
        )  # fmt: skip
        assert found["results"][1]["integrationSettings"]["provider"] == "EPIC"
        listed = {op["id"] for op in json.loads(manifests["apollo"].read_text())["operations"]}
        assert not any(r["query"] for r in found["sent"])  # never the text: ids only
        assert {r["hash"] for r in found["sent"]} == listed
    finally:
        gateway.stop()


def test_a_manifest_that_does_not_validate_stops_startup(tmp_path: Path) -> None:
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({"sha256:" + sha256("{ nope }"): "{ nope }"}))
    with pytest.raises(AssertionError) as failed:
        GatewayProcess(tmp_path, EHRGW_TRUSTED_DOCUMENTS=str(manifest))
    lines = [line for line in str(failed.value).splitlines() if "EHRGW_TRUSTED_DOCUMENTS" in line]
    assert len(lines) == 1
    assert "nope" in lines[0]


def test_without_automatic_persisted_queries_the_link_is_told_to_stop(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path, EHRGW_PERSISTED_QUERIES="false")
    try:
        variables = {"tenantId": "t1"}
        ran = post(gateway, {"query": SETTINGS, "variables": variables,
                             "extensions": persisted(SETTINGS)})  # fmt: skip
        assert ran.json() == {"data": {"integrationSettings": None}}
        by_hash = post(gateway, {"variables": variables, "extensions": persisted(SETTINGS)})
        assert by_hash.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
        version_2 = {"persistedQuery": {"version": 2, "sha256Hash": sha256(SETTINGS)}}
        unsupported = post(gateway, {"variables": variables, "extensions": version_2})
        assert unsupported.status_code == 400
        message = unsupported.json()["errors"][0]["message"]
        assert message.startswith("extensions.persistedQuery.version")
    finally:
        gateway.stop()
