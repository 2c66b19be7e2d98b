"""auditLog, settingsDiff, rollbackSettings, exportSettings and importSettings: what a hospital
integration team uses to see who changed what, undo it, and promote a sandbox's configuration
to production."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from ehr_gateway.storage.legacy import adopt_legacy_history
from ehr_gateway.storage.secrets import SecretBox
from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import EXPORT_SETTINGS, SELECT_EPIC
from tests.older_gateway import as_older_gateway_left_it

# Names no tenant, and is not even valid Unicode: a lone surrogate, which JSON can carry.
NO_TENANT = "acme\ud800"

SET_FHIR = """
mutation SetFhir($tenantId: ID!, $prefix: String, $mrn: String) {
  updateFhirSettings(
    tenantId: $tenantId, input: {epic: {urlPrefix: $prefix, mrnIdentifier: $mrn}}
  ) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
SET_SOAP = """
mutation SetSoap($tenantId: ID!, $password: String!) {
  updateEhrSettings(
    tenantId: $tenantId, input: {epic: {soapUsername: "svc-user", soapPassword: $password}}
  ) { __typename ... on SettingsSaved { settings { version } } }
}
"""
CREATE_GATEWAY = """
mutation Gateway($tenantId: ID!, $name: String!) {
  createExternalGateway(
    tenantId: $tenantId
    connection: {name: $name, baseUrl: "https://fhir.hospital.example/api", environment: PRODUCTION}
  ) {
    __typename
    ... on SettingsSaved { settings { externalGateway { externalGatewayId name } } }
  }
}
"""
READ = """
query Read($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version provider
    externalGateway { externalGatewayId name baseUrl }
    fhir { ... on EpicFhirSettings { urlPrefix mrnIdentifier } }
    ehr { ... on EpicSettings { soapUsername soapPassword { isSet fingerprint } } }
  }
}
"""
AUDIT_LOG = """
query Audit($tenantId: ID!, $first: Int, $before: String) {
  auditLog(tenantId: $tenantId, first: $first, before: $before) {
    entries {
      id subject roles operation outcome version requestId missingPermission
      changes { path before after }
    }
    hasMore nextBefore
  }
}
"""
DIFF = """
query Diff($tenantId: ID!, $from: Int!, $to: Int!) {
  settingsDiff(tenantId: $tenantId, fromVersion: $from, toVersion: $to) {
    __typename
    ... on SettingsDiff { fromVersion toVersion changes { path before after } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
ROLLBACK = """
mutation Rollback($tenantId: ID!, $to: Int!, $expected: Int) {
  rollbackSettings(tenantId: $tenantId, toVersion: $to, expectedVersion: $expected) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code } }
    ... on VersionConflict { currentVersion }
  }
}
"""
IMPORT = """
mutation Import($tenantId: ID!, $doc: JSON!, $dryRun: Boolean!) {
  importSettings(tenantId: $tenantId, document: $doc, dryRun: $dryRun) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ImportPreview { changes { path before after } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
REGENERATE = """
mutation Regenerate($tenantId: ID!) {
  regenerateExternalGatewayId(tenantId: $tenantId) {
    ... on SettingsSaved { settings { externalGateway { externalGatewayId } } }
  }
}
"""


async def _configure(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
    await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4", mrn="urn:oid:1.2.3")
    await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R5", mrn="urn:oid:1.2.3")


async def test_every_write_is_audited_with_who_what_and_before_and_after(
    gateway: Gateway, tenant_id: str
) -> None:
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"], subject="alice")
    await editor.execute(SELECT_EPIC, tenantId=tenant_id)
    await editor.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4", mrn=None)

    log = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]
    newest, first = log["entries"]
    assert first["operation"] == "selectEhrProvider" and first["version"] == 1
    assert newest["subject"] == "alice" and newest["roles"] == ["editor"]
    assert newest["outcome"] == "SAVED" and newest["version"] == 2
    assert newest["operation"] == "updateFhirSettings"
    assert newest["requestId"] and newest["requestId"] != first["requestId"]
    assert newest["changes"] == [
        {"path": "providers.EPIC.fhir.urlPrefix", "before": None, "after": "/FHIR/R4"}
    ]


async def test_a_denied_attempt_is_audited_with_the_missing_permission(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"], subject="bob")
    body = await editor.post(SET_SOAP, tenantId=tenant_id, password="p4ss-word")
    assert body["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "permission": "secrets:write",
        "fields": ["providers.EPIC.ehr.soapPassword"],
    }

    entries = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]["entries"]
    assert entries[0]["outcome"] == "DENIED" and entries[0]["subject"] == "bob"
    assert entries[0]["operation"] == "updateEhrSettings"
    assert entries[0]["missingPermission"] == "secrets:write"
    assert entries[0]["version"] is None
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["version"] == 1 and read["ehr"]["soapPassword"]["isSet"] is False


async def test_a_denied_attempt_on_an_id_that_names_no_tenant_is_refused_as_any_other(
    gateway: Gateway, tenant_id: str
) -> None:
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    body = await viewer.post(SELECT_EPIC, tenantId=NO_TENANT)
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "permission": "settings:edit"}


async def test_an_id_that_names_no_tenant_or_no_entry_has_an_empty_audit_log(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    empty = {"entries": [], "hasMore": False, "nextBefore": None}
    assert (await gateway.execute(AUDIT_LOG, tenantId=NO_TENANT))["auditLog"] == empty
    for before in (NO_TENANT, f"{tenant_id}:v\ud800"):
        page = await gateway.execute(AUDIT_LOG, tenantId=tenant_id, before=before)
        assert page["auditLog"] == empty


async def test_the_audit_log_pages_newest_first(gateway: Gateway, tenant_id: str) -> None:
    await _configure(gateway, tenant_id)
    seen: list[int] = []
    before = None
    while True:
        page = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id, first=2, before=before))[
            "auditLog"
        ]
        seen.extend(entry["version"] for entry in page["entries"])
        if not page["hasMore"]:
            break
        before = page["nextBefore"]
    assert seen == [3, 2, 1]


async def test_a_secret_change_is_audited_without_its_value(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(SET_SOAP, tenantId=tenant_id, password="audit-canary-1")
    entries = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]["entries"]
    change = next(c for c in entries[0]["changes"] if c["path"].endswith("soapPassword"))
    assert change["before"] is None and change["after"]["isSet"] is True  # None: never set
    assert set(change["after"]) == {"isSet", "fingerprint", "updatedAt"}
    assert "audit-canary-1" not in json.dumps(entries)


async def test_settings_diff_names_each_changed_field(gateway: Gateway, tenant_id: str) -> None:
    await _configure(gateway, tenant_id)
    diff = (await gateway.execute(DIFF, tenantId=tenant_id, **{"from": 1, "to": 3}))["settingsDiff"]
    assert diff["changes"] == [
        {"path": "providers.EPIC.fhir.mrnIdentifier", "before": None, "after": "urn:oid:1.2.3"},
        {"path": "providers.EPIC.fhir.urlPrefix", "before": None, "after": "/FHIR/R5"},
    ]
    backwards = (await gateway.execute(DIFF, tenantId=tenant_id, **{"from": 3, "to": 2}))[
        "settingsDiff"
    ]
    assert backwards["changes"] == [
        {"path": "providers.EPIC.fhir.urlPrefix", "before": "/FHIR/R5", "after": "/FHIR/R4"}
    ]
    unknown = (await gateway.execute(DIFF, tenantId=tenant_id, **{"from": 1, "to": 9}))[
        "settingsDiff"
    ]
    assert unknown["errors"] == [{"path": ["toVersion"], "code": "UNKNOWN_VERSION"}]
    no_tenant = (await gateway.execute(DIFF, tenantId=NO_TENANT, **{"from": 1, "to": 2}))[
        "settingsDiff"
    ]
    assert no_tenant["errors"] == [{"path": ["tenantId"], "code": "INVALID_TENANT_ID"}]


async def test_rollback_stores_a_new_version_equal_to_the_old_one(
    gateway: Gateway, tenant_id: str
) -> None:
    await _configure(gateway, tenant_id)
    result = (await gateway.execute(ROLLBACK, tenantId=tenant_id, to=2, expected=3))[
        "rollbackSettings"
    ]
    assert result == {"__typename": "SettingsSaved", "settings": {"version": 4}}
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["fhir"] == {"urlPrefix": "/FHIR/R4", "mrnIdentifier": "urn:oid:1.2.3"}
    diff = (await gateway.execute(DIFF, tenantId=tenant_id, **{"from": 2, "to": 4}))["settingsDiff"]
    assert diff["changes"] == []
    entries = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]["entries"]
    assert entries[0]["operation"] == "rollbackSettings" and entries[0]["version"] == 4


async def test_rollback_refuses_a_stale_version_and_an_unknown_one(
    gateway: Gateway, tenant_id: str
) -> None:
    await _configure(gateway, tenant_id)
    stale = await gateway.execute(ROLLBACK, tenantId=tenant_id, to=1, expected=2)
    assert stale["rollbackSettings"] == {"__typename": "VersionConflict", "currentVersion": 3}
    unknown = await gateway.execute(ROLLBACK, tenantId=tenant_id, to=7, expected=None)
    assert unknown["rollbackSettings"]["errors"] == [
        {"path": ["toVersion"], "code": "UNKNOWN_VERSION"}
    ]


ROLLBACK_REFUSED = """
mutation Rollback($tenantId: ID!, $to: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $to) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
# A prefix that makes the FHIR base URL's host the attacker's: refused since urlPrefix is a path.
FOREIGN_PREFIX = "@attacker.example.test/FHIR"


def _database_writer(database_url: str) -> AsyncMongoClient[dict[str, Any]]:
    """A database writer's client: someone who can write the database, not the gateway."""
    return AsyncMongoClient(database_url)


async def test_rollback_refuses_a_version_edited_in_the_database(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await _configure(gateway, tenant_id)
    writer = _database_writer(database_url)
    try:
        await writer[TEST_DATABASE]["tenant_settings_history"].update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
    finally:
        await writer.close()

    refused = await gateway.post(ROLLBACK_REFUSED, tenantId=tenant_id, to=2)

    assert refused["data"] is None, refused
    assert refused["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["version"] == 3 and read["fhir"]["urlPrefix"] == "/FHIR/R5"
    # Only the rollback to the edited version is refused: the tenant's writes go on.
    saved = await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R6", mrn=None)
    assert saved["updateFhirSettings"]["__typename"] == "SettingsSaved", saved


async def test_rollback_refuses_a_version_stripped_of_its_chain_to_pass_as_legacy(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    await _configure(gateway, tenant_id)
    writer = _database_writer(database_url)
    try:
        await writer[TEST_DATABASE]["tenant_settings_history"].update_many(
            {"tenantId": tenant_id, "version": {"$lte": 2}},
            {
                "$set": {"settings.providers.EPIC.fhir.urlPrefix": "/FHIR/EDITED"},
                "$unset": {"chain": ""},
            },
        )
    finally:
        await writer.close()

    refused = await gateway.post(ROLLBACK_REFUSED, tenantId=tenant_id, to=2)

    assert refused["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["fhir"]["urlPrefix"] == "/FHIR/R5"


async def test_rollback_refuses_an_unchained_version_placed_past_the_newest(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    # Past a gap (no version 4), nothing chained comes before it: it once passed as an entry
    # from before the chain, and the rollback signed it.
    await _configure(gateway, tenant_id)  # v3
    writer = _database_writer(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        latest = await history.find_one({"tenantId": tenant_id, "version": 3})
        assert latest is not None
        forged = {key: value for key, value in latest.items() if key not in ("_id", "chain")}
        forged["version"] = 5
        forged["settings"] = dict(latest["settings"], version=5)
        forged["settings"]["providers"]["EPIC"]["fhir"]["urlPrefix"] = "/FHIR/FORGED"
        await history.insert_one(forged)
    finally:
        await writer.close()

    refused = await gateway.post(ROLLBACK_REFUSED, tenantId=tenant_id, to=5)

    assert refused["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
    assert "chain-legacy-history" in refused["errors"][0]["message"]
    # Nor is it served, nor the document as if it were current: which version is cannot be
    # told with an entry past it that does not verify, so reads are refused as writes are.
    read = await gateway.post(READ, tenantId=tenant_id)
    assert [error["extensions"]["code"] for error in read["errors"]] == ["HISTORY_TAMPERED"]
    assert "FORGED" not in str(read), read


async def test_rollback_refuses_a_version_when_every_entry_is_stripped_of_its_chain(
    database_url: str, gateway: Gateway, tenant_id: str
) -> None:
    # With the newest entry stripped too, nothing in the database says the chain had begun.
    await _configure(gateway, tenant_id)
    writer = _database_writer(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        await history.update_many({"tenantId": tenant_id}, {"$unset": {"chain": ""}})
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": "/FHIR/EDITED"}},
        )
    finally:
        await writer.close()

    refused = await gateway.post(ROLLBACK_REFUSED, tenantId=tenant_id, to=2)

    assert refused["errors"][0]["extensions"] == {"code": "HISTORY_TAMPERED"}, refused
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["version"] == 3 and read["fhir"]["urlPrefix"] == "/FHIR/R5"


async def test_rollback_refuses_a_version_whose_values_todays_rules_refuse(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/legacy", mrn=None)  # v2
    # Version 2 as a gateway from before the urlPrefix rule (and the history chain) stored it.
    writer = _database_writer(database_url)
    try:
        history = writer[TEST_DATABASE]["tenant_settings_history"]
        await as_older_gateway_left_it(writer[TEST_DATABASE], tenant_id)
        await history.update_one(
            {"tenantId": tenant_id, "version": 2},
            {"$set": {"settings.providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}},
        )
        await writer[TEST_DATABASE]["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$set": {"providers.EPIC.fhir.urlPrefix": FOREIGN_PREFIX}}
        )
        # Adopted as an operator adopts a history from before the chain (chain-legacy-history):
        # until then no rollback takes an unchained version.
        keys = SecretBox.from_data_dir(tmp_path).chain
        adopted = await adopt_legacy_history(writer[TEST_DATABASE], keys, tenant_id)
        assert (adopted.signed, adopted.refused) == (2, None)
    finally:
        await writer.close()

    async for gateway in open_gateway(config):
        saved = await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix="/FHIR/R4", mrn=None)
        assert saved["updateFhirSettings"]["__typename"] == "SettingsSaved", saved
        again = await gateway.execute(SET_FHIR, tenantId=tenant_id, prefix=FOREIGN_PREFIX, mrn=None)
        assert again["updateFhirSettings"]["errors"] == [
            {"path": ["input", "epic", "urlPrefix"], "code": "INVALID_URL_PREFIX"}
        ]

        refused = await gateway.execute(ROLLBACK_REFUSED, tenantId=tenant_id, to=2)

        assert refused["rollbackSettings"] == {
            "__typename": "ValidationFailed",
            "errors": [
                {
                    "path": ["toVersion", "providers", "EPIC", "fhir", "urlPrefix"],
                    "code": "INVALID_URL_PREFIX",
                }
            ],
        }
        read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
        assert read["fhir"]["urlPrefix"] == "/FHIR/R4"


async def test_rollback_keeps_the_current_external_gateway_id(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    await gateway.execute(CREATE_GATEWAY, tenantId=tenant_id, name="first")  # v2
    rotated = await gateway.execute(REGENERATE, tenantId=tenant_id)  # v3
    new_id = rotated["regenerateExternalGatewayId"]["settings"]["externalGateway"]
    await gateway.execute(CREATE_GATEWAY, tenantId=tenant_id, name="renamed")  # v4
    await gateway.execute(ROLLBACK, tenantId=tenant_id, to=2, expected=None)
    read = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert read["externalGateway"]["name"] == "first"
    assert read["externalGateway"]["externalGatewayId"] == new_id["externalGatewayId"]


async def _sandbox(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    await _configure(gateway, tenant_id)
    await gateway.execute(SET_SOAP, tenantId=tenant_id, password="sandbox-password")
    await gateway.execute(CREATE_GATEWAY, tenantId=tenant_id, name="sandbox")
    document: dict[str, Any] = (await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))[
        "exportSettings"
    ]
    return document


async def test_an_export_holds_configuration_but_no_secret_and_no_identity(
    gateway: Gateway, tenant_id: str
) -> None:
    document = await _sandbox(gateway, tenant_id)
    text = json.dumps(document)
    assert document["format"] == "ehr-gateway/settings" and document["provider"] == "EPIC"
    assert document["providers"]["EPIC"]["fhir"] == {
        "urlPrefix": "/FHIR/R5",
        "mrnIdentifier": "urn:oid:1.2.3",
    }
    assert document["providers"]["EPIC"]["ehr"] == {"soapUsername": "svc-user"}
    assert "sandbox-password" not in text and "ciphertext" not in text
    assert "soapPassword" not in text and "externalGatewayId" not in text


async def test_importing_promotes_a_sandbox_to_production_as_one_version(
    gateway: Gateway, tenant_id: str
) -> None:
    document = await _sandbox(gateway, tenant_id)
    production = f"{tenant_id}-prod"
    await gateway.execute(SELECT_EPIC, tenantId=production)
    await gateway.execute(SET_SOAP, tenantId=production, password="production-password")
    before = (await gateway.execute(READ, tenantId=production))["integrationSettings"]

    preview = (await gateway.execute(IMPORT, tenantId=production, doc=document, dryRun=True))[
        "importSettings"
    ]
    assert preview["__typename"] == "ImportPreview"
    paths = {change["path"] for change in preview["changes"]}
    assert {"providers.EPIC.fhir.urlPrefix", "providers.EPIC.externalGateway.name"} <= paths
    assert (await gateway.execute(READ, tenantId=production))["integrationSettings"] == before

    saved = (await gateway.execute(IMPORT, tenantId=production, doc=document, dryRun=False))[
        "importSettings"
    ]
    assert saved == {"__typename": "SettingsSaved", "settings": {"version": before["version"] + 1}}
    after = (await gateway.execute(READ, tenantId=production))["integrationSettings"]
    assert after["fhir"] == {"urlPrefix": "/FHIR/R5", "mrnIdentifier": "urn:oid:1.2.3"}
    assert after["ehr"]["soapPassword"] == before["ehr"]["soapPassword"]  # its own secret
    sandbox = (await gateway.execute(READ, tenantId=tenant_id))["integrationSettings"]
    assert after["externalGateway"]["name"] == "sandbox"
    assert (
        after["externalGateway"]["externalGatewayId"]
        != (sandbox["externalGateway"]["externalGatewayId"])
    )


async def test_an_invalid_document_is_refused_whole_and_stores_nothing(
    gateway: Gateway, tenant_id: str
) -> None:
    document = await _sandbox(gateway, tenant_id)
    production = f"{tenant_id}-prod"
    await gateway.execute(SELECT_EPIC, tenantId=production)
    document["providers"]["EPIC"]["fhir"]["mrnIdentifier"] = "not a urn"
    document["providers"]["EPIC"]["ehr"]["soapPassword"] = "smuggled-secret"
    document["patientRestriction"] = "age <"
    for dry_run in (True, False):
        refused = (
            await gateway.execute(IMPORT, tenantId=production, doc=document, dryRun=dry_run)
        )["importSettings"]
        assert refused["__typename"] == "ValidationFailed"
        paths = [error["path"] for error in refused["errors"]]
        assert ["document", "patientRestriction"] in paths
        assert ["document", "providers", "EPIC", "fhir", "mrnIdentifier"] in paths
        assert ["document", "providers", "EPIC", "ehr"] in paths
    assert (await gateway.execute(READ, tenantId=production))["integrationSettings"]["version"] == 1
    not_an_export = (await gateway.execute(IMPORT, tenantId=production, doc=[1, 2], dryRun=True))[
        "importSettings"
    ]
    assert not_an_export["errors"] == [{"path": ["document"], "code": "NOT_AN_EXPORT"}]
