"""Key rotation with EHRGW_ENCRYPTION_KEY: secrets stored under key A (the Epic SOAP password and
OAuth signing keys, in the current settings and every history version) are re-encrypted under key
B, after which a gateway holding only key B still uses them."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.storage.client import connect
from ehr_gateway.storage.repository import HISTORY, SETTINGS
from ehr_gateway.storage.rotation import rotate
from ehr_gateway.storage.secrets import KEY_FILE, SecretBox, key_id, new_key
from tests.conftest import Gateway, open_gateway
from tests.documents import SELECT_EPIC

TOKEN_URL = "http://127.0.0.1:9/token"  # the discard port: nothing answers
SOAP_PASSWORD = "soap-pa55-rotation"
PLANTED = {
    "ciphertext": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "keyId": "planted",
    "fingerprint": "0123456789abcdef",
    "updatedAt": "2026-01-01T00:00:00Z",
}

UPDATE_EHR = """
mutation UpdateEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
UPDATE_OAUTH = """
mutation UpdateOAuth($tenantId: ID!, $input: OAuthSettingsInput!) {
  updateOAuthSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
GENERATE_KEY = """
mutation Generate($tenantId: ID!) {
  generateOAuthSigningKey(tenantId: $tenantId) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
TEST_TOKEN = """
mutation TestToken($tenantId: ID!) {
  testOAuthToken(tenantId: $tenantId) {
    __typename
    ... on OAuthTokenTest { ok status error errorDescription }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
READ_SECRETS = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    oauthSigningKeys { kid }
    ehr { ... on EpicSettings { soapUsername soapPassword { isSet fingerprint } } }
  }
}
"""


@pytest.fixture(scope="module")
def key_a() -> str:
    return new_key()


@pytest.fixture(scope="module")
def key_b() -> str:
    return new_key()


@pytest.fixture
def database() -> str:
    """A database of this test's own: rotation walks every tenant of a database, and the other
    tests' tenants are sealed under their own key files."""
    return f"rotation_{uuid.uuid4().hex[:12]}"


def _key_id(encoded: str) -> str:
    return key_id(base64.b64decode(encoded))


def _config(
    database_url: str, database: str, data_dir: Path, key: str | None, previous: str | None = None
) -> GatewayConfig:
    return GatewayConfig(
        mongodb_url=database_url,
        database=database,
        data_dir=data_dir,
        public_base_url="https://gateway.example.test",
        encryption_key=key,
        previous_encryption_keys=previous,
        allow_insecure_http=True,
        outbound_allow_private=True,
        outbound_timeout_s=2,
    )


@asynccontextmanager
async def _serving(config: GatewayConfig) -> AsyncIterator[Gateway]:
    """An in-process gateway, shut down on leaving (also when an assertion fails inside)."""
    opened = cast(AsyncGenerator[Gateway, None], open_gateway(config))
    try:
        yield await anext(opened)
    finally:
        await opened.aclose()


def _sealed(value: Any) -> Iterator[dict[str, Any]]:
    """Every stored secret (a mapping with a ciphertext) anywhere in a document."""
    if isinstance(value, dict):
        if value.get("ciphertext"):
            yield value
        for item in value.values():
            yield from _sealed(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sealed(item)


async def _stored_key_ids(database_url: str, database: str, tenant_id: str) -> list[str]:
    """The key ids of every secret stored for ``tenant_id``, current settings then history."""
    client = connect(database_url)
    try:
        db = client[database]
        documents = [await db[SETTINGS].find_one({"_id": tenant_id})]
        documents += await db[HISTORY].find({"tenantId": tenant_id}).to_list()
        return [secret["keyId"] for document in documents for secret in _sealed(document)]
    finally:
        await client.close()


async def _store_secrets(gateway: Gateway, tenant_id: str) -> None:
    """Versions 1 to 6: provider, SOAP credentials twice, OAuth settings, two signing keys."""
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    for password in ("soap-first-value", SOAP_PASSWORD):
        data = await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id,
            input={"epic": {"soapUsername": "soap-user", "soapPassword": password}},
        )  # fmt: skip
        assert data["updateEhrSettings"]["__typename"] == "SettingsSaved", data
    data = await gateway.execute(
        UPDATE_OAUTH, tenantId=tenant_id,
        input={"epic": {"epicClientId": "rotation-client", "oauthTokenUrl": TOKEN_URL}},
    )  # fmt: skip
    assert data["updateOAuthSettings"]["__typename"] == "SettingsSaved", data
    for _ in range(2):
        data = await gateway.execute(GENERATE_KEY, tenantId=tenant_id)
        assert data["generateOAuthSigningKey"]["__typename"] == "SettingsSaved", data


async def _token_test(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gateway.execute(TEST_TOKEN, tenantId=tenant_id))[
        "testOAuthToken"
    ]
    return result


def _assert_unreachable(result: dict[str, Any]) -> None:
    """The assertion was signed (so the private key was opened) and the call went out."""
    assert result["__typename"] == "OAuthTokenTest", result
    assert (result["ok"], result["status"], result["error"]) == (False, 0, "UNREACHABLE"), result
    assert result["errorDescription"]


async def test_rotation_re_encrypts_every_secret_under_the_new_key(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    box_a, box_b = SecretBox.from_base64(key_a), SecretBox.from_base64(key_b)
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)
        before = (await gateway.execute(READ_SECRETS, tenantId=tenant_id))["integrationSettings"]
        # Under key A the token test gets as far as the (unreachable) token endpoint.
        _assert_unreachable(await _token_test(gateway, tenant_id))
    assert before["version"] == 6
    assert before["ehr"]["soapPassword"] == {
        "isSet": True,
        "fingerprint": box_a.fingerprint(SOAP_PASSWORD, f"{tenant_id}:EPIC:EHR:soapPassword"),
    }
    stored = await _stored_key_ids(database_url, database, tenant_id)
    # Current: SOAP password + 2 keys; history v2..v6: 1 + 1 + 1 + 2 + 3.
    assert stored == [_key_id(key_a)] * 11

    rotated = await rotate(
        mongodb_url=database_url, database=database, data_dir=tmp_path,
        encryption_key=key_b, previous_keys=key_a,
    )  # fmt: skip

    assert rotated.key_id == box_b.key_id
    assert (rotated.documents, rotated.secrets) == (6, 11)
    assert await _stored_key_ids(database_url, database, tenant_id) == [box_b.key_id] * 11

    async with _serving(_config(database_url, database, tmp_path, key_b)) as gateway:
        after = (await gateway.execute(READ_SECRETS, tenantId=tenant_id))["integrationSettings"]
        assert after["version"] == 6, "rotation stores no new version"
        assert after["oauthSigningKeys"] == before["oauthSigningKeys"]
        assert after["ehr"]["soapUsername"] == "soap-user"
        # Re-encrypted, not changed: the fingerprint an admin compares against stays.
        assert after["ehr"]["soapPassword"] == before["ehr"]["soapPassword"]
        # The private key opens under key B alone: the test reaches the network again.
        _assert_unreachable(await _token_test(gateway, tenant_id))
        # Sending the password it already has is still recognised: nothing is stored.
        data = await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id,
            input={"epic": {"soapUsername": "soap-user", "soapPassword": SOAP_PASSWORD}},
        )  # fmt: skip
        assert data["updateEhrSettings"] == {"__typename": "SettingsSaved",
                                             "settings": {"version": 6}}  # fmt: skip


async def test_a_write_after_rotation_by_a_replica_that_cached_the_settings_keeps_the_new_key(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    """Rotation re-seals the stored version in place, which no change feed reports: a replica
    that read or wrote the settings before must not write its copy's old ciphertext back."""
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)
    # Rotation as documented: every replica gets the new key and keeps the old one meanwhile.
    async with _serving(_config(database_url, database, tmp_path, key_b, key_a)) as replica:
        before = await replica.execute(READ_SECRETS, tenantId=tenant_id)
        assert before["integrationSettings"]["version"] == 6
        data = await replica.execute(
            UPDATE_EHR, tenantId=tenant_id, input={"epic": {"soapUsername": "before-rotation"}}
        )
        assert data["updateEhrSettings"]["settings"] == {"version": 7}, data
        await rotate(
            mongodb_url=database_url, database=database, data_dir=tmp_path,
            encryption_key=key_b, previous_keys=key_a,
        )  # fmt: skip
        data = await replica.execute(
            UPDATE_EHR, tenantId=tenant_id, input={"epic": {"soapUsername": "after-rotation"}}
        )
        assert data["updateEhrSettings"]["settings"] == {"version": 8}, data

    client = connect(database_url)
    try:
        current = await client[database][SETTINGS].find_one({"_id": tenant_id})
        newest = await client[database][HISTORY].find_one({"tenantId": tenant_id, "version": 8})
    finally:
        await client.close()
    assert {secret["keyId"] for secret in _sealed(current)} == {_key_id(key_b)}
    assert {secret["keyId"] for secret in _sealed(newest)} == {_key_id(key_b)}
    # The previous key can go: the private key opens under key B alone.
    async with _serving(_config(database_url, database, tmp_path, key_b)) as gateway:
        _assert_unreachable(await _token_test(gateway, tenant_id))


async def test_a_second_rotation_re_encrypts_nothing(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)
    arguments: dict[str, Any] = dict(
        mongodb_url=database_url, database=database, data_dir=tmp_path,
        encryption_key=key_b, previous_keys=key_a,
    )  # fmt: skip
    first = await rotate(**arguments)
    assert first.secrets == 11

    again = await rotate(**arguments)

    assert (again.key_id, again.documents, again.secrets) == (first.key_id, 0, 0)
    # The old key is no longer needed at all.
    without_old = await rotate(**{**arguments, "previous_keys": None})
    assert (without_old.documents, without_old.secrets) == (0, 0)


async def test_rotation_without_the_old_key_reports_every_secret_and_changes_nothing(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)

    rotated = await rotate(
        mongodb_url=database_url, database=database, data_dir=tmp_path,
        encryption_key=key_b, previous_keys=None,
    )  # fmt: skip

    assert (rotated.documents, rotated.secrets, rotated.remaced) == (0, 0, 0)
    assert len(rotated.unreadable) == 11
    assert {secret.tenant_id for secret in rotated.unreadable} == {tenant_id}
    assert all(_key_id(key_a) in secret.reason for secret in rotated.unreadable)
    assert key_a not in str(rotated)
    assert set(await _stored_key_ids(database_url, database, tenant_id)) == {_key_id(key_a)}


async def test_a_secret_no_key_opens_is_reported_and_the_other_tenants_are_rotated(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    """A stored secret sealed under a key the deployment does not have (a lost key, or one a
    document planted) is named by tenant and path; rotation goes on with every other secret and
    the command exits non-zero at the end."""
    damaged = f"{tenant_id}-damaged"
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)
        await gateway.execute(SELECT_EPIC, tenantId=damaged)
    client = connect(database_url)
    try:
        await client[database][SETTINGS].update_one(
            {"_id": damaged}, {"$set": {"providers.EPIC.ehr.soapPassword": PLANTED}}
        )
    finally:
        await client.close()

    rotated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ehr_gateway.server.cli", "rotate-secrets"],
        env={**os.environ, "EHRGW_MONGODB_URL": database_url, "EHRGW_DATABASE": database,
             "EHRGW_DATA_DIR": str(tmp_path), "EHRGW_ENCRYPTION_KEY": key_b,
             "EHRGW_PREVIOUS_ENCRYPTION_KEYS": key_a},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert rotated.returncode == 1, rotated.stderr
    assert "re-encrypted 11 secrets in 6 documents" in rotated.stdout
    assert f"tenant '{damaged}', settings: providers.EPIC.ehr.soapPassword" in rotated.stderr
    assert "key planted, which is not configured" in rotated.stderr
    assert PLANTED["ciphertext"] not in rotated.stderr + rotated.stdout
    assert await _stored_key_ids(database_url, database, tenant_id) == [_key_id(key_b)] * 11
    assert await _stored_key_ids(database_url, database, damaged) == ["planted"]


async def test_a_gateway_without_the_old_key_fails_clearly_before_rotation(
    database_url: str,
    database: str,
    tenant_id: str,
    tmp_path: Path,
    key_a: str,
    key_b: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A replica started with the new key but not the previous one cannot check the seal of the
    tenant's settings nor its history (both made under the previous key): it serves neither,
    since a database writer could name any key, and its log says which key is missing."""
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)
    caplog.set_level(logging.WARNING, logger="ehr_gateway.security")

    async with _serving(_config(database_url, database, tmp_path, key_b)) as gateway:
        read = await gateway.post(READ_SECRETS, tenantId=tenant_id)
        used = await gateway.post(TEST_TOKEN, tenantId=tenant_id)

    for body in (read, used):
        assert [e["extensions"]["code"] for e in body["errors"]] == ["HISTORY_TAMPERED"], body
    assert f"sealed with key {_key_id(key_a)}, which is not configured" in caplog.text
    assert "UNKNOWN_KEY" in caplog.text


async def test_rotation_with_the_data_dir_key_file_replaces_the_key(
    database_url: str, database: str, tenant_id: str, tmp_path: Path
) -> None:
    """The embedded default: no EHRGW_ENCRYPTION_KEY, the key lives in the data dir."""
    async with _serving(_config(database_url, database, tmp_path, None)) as gateway:
        await _store_secrets(gateway, tenant_id)
    key_file = tmp_path / KEY_FILE
    [old_key] = key_file.read_text().split()

    rotated = await rotate(
        mongodb_url=database_url, database=database, data_dir=tmp_path,
        encryption_key=None, previous_keys=None,
    )  # fmt: skip

    [new] = key_file.read_text().split()
    assert new != old_key
    assert rotated.key_id == _key_id(new) != _key_id(old_key)
    assert (rotated.documents, rotated.secrets) == (6, 11)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert await _stored_key_ids(database_url, database, tenant_id) == [rotated.key_id] * 11
    async with _serving(_config(database_url, database, tmp_path, None)) as gateway:
        _assert_unreachable(await _token_test(gateway, tenant_id))


async def test_rotation_reseals_documents_but_never_an_edited_one(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    """Each settings document's seal is made again under the new key once it verified under the
    old one: a gateway holding only the new key then serves the tenant. A document a database
    writer edited keeps its broken seal, and a load takes its (re-MACed) history entry."""
    edited = f"{tenant_id}-edited"
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await _store_secrets(gateway, tenant_id)
        await _store_secrets(gateway, edited)
    client = connect(database_url)
    try:
        await client[database][SETTINGS].update_one(
            {"_id": edited}, {"$set": {"providers.EPIC.ehr.soapUsername": "db-writer"}}
        )
    finally:
        await client.close()

    await rotate(
        mongodb_url=database_url, database=database, data_dir=tmp_path,
        encryption_key=key_b, previous_keys=key_a,
    )  # fmt: skip

    async with _serving(_config(database_url, database, tmp_path, key_b)) as gateway:
        reads = [await gateway.execute(READ_SECRETS, tenantId=t) for t in (tenant_id, edited)]
        _assert_unreachable(await _token_test(gateway, tenant_id))
    usernames = {r["integrationSettings"]["ehr"]["soapUsername"] for r in reads}
    assert "db-writer" not in usernames and len(usernames) == 1, reads


LIST_TENANTS = """
query ListTenants { tenants(first: 10) { items { tenantId version } } }
"""


async def test_directory_rows_are_listed_under_the_new_key_alone_after_rotation(
    database_url: str, database: str, tenant_id: str, tmp_path: Path, key_a: str, key_b: str
) -> None:
    """Each directory row carries a seal of its own (storage.directory): rotation makes it
    again under the new key, so a gateway without the old one still lists every tenant."""
    async with _serving(_config(database_url, database, tmp_path, key_a)) as gateway:
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)

    await rotate(
        mongodb_url=database_url, database=database, data_dir=tmp_path,
        encryption_key=key_b, previous_keys=key_a,
    )  # fmt: skip

    async with _serving(_config(database_url, database, tmp_path, key_b)) as gateway:
        listed = await gateway.execute(LIST_TENANTS)
    assert listed["tenants"]["items"] == [{"tenantId": tenant_id, "version": 1}]


async def test_where_a_secret_no_key_opens_sits_is_printed_escaped(
    database_url: str, database: str, tmp_path: Path, key_a: str
) -> None:
    """A database writer gives a settings document a provider key holding a terminal escape and
    a line break, under which lies a secret no configured key opens. The command names that
    secret by its path, built from the document's keys: printed escaped, so the escape cannot
    erase the line naming the secret or print a line of the writer's choosing."""
    planted = "planted-escapes"
    escape = "\x1b[2K\rehr-gateway: every secret re-encrypted\n"
    client = connect(database_url)
    try:
        await client[database][SETTINGS].insert_one(
            {"_id": planted, "version": 1, "provider": "EPIC",
             "providers": {f"EPIC{escape}": {"ehr": {"soapPassword": PLANTED}}}}
        )  # fmt: skip
    finally:
        await client.close()

    rotated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ehr_gateway.server.cli", "rotate-secrets"],
        env={**os.environ, "EHRGW_MONGODB_URL": database_url, "EHRGW_DATABASE": database,
             "EHRGW_DATA_DIR": str(tmp_path), "EHRGW_ENCRYPTION_KEY": key_a},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert f"tenant '{planted}', settings: providers.EPIC\\x1b[2K\\x0d" in rotated.stderr, (
        rotated.stderr
    )
    assert "\x1b" not in rotated.stderr and "\r" not in rotated.stderr, repr(rotated.stderr)
