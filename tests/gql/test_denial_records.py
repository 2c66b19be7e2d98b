"""Where refused attempts are recorded: a caller with no access to a tenant cannot write into
that tenant's audit log (its refusals go to the security log and a metric), and a caller refused
a permission on its own tenant is audited once, not once per retry."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest

from ehr_gateway.server.logs import JsonFormatter, TextFormatter, escape_controls
from tests.conftest import Gateway
from tests.documents import SELECT_EPIC

# The tester's flood: one request, as many reads of another tenant as the alias limit admits.
ALIASES = 30
FLOOD = (
    "query Flood($tenantId: ID!) {"
    + " ".join(
        f"a{n}: integrationSettings(tenantId: $tenantId) {{ version }}" for n in range(ALIASES)
    )
    + "}"
)
UPDATE_FHIR = """
mutation Fhir($tenantId: ID!) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: "/FHIR/R4"}}) { __typename }
}
"""
UPDATE_HEADERS = """
mutation Headers($tenantId: ID!) {
  updateHeaderSettings(tenantId: $tenantId, input: {epic: {epicUserId: "vera"}}) { __typename }
}
"""
AUDIT_LOG = """
query Audit($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 100) {
    entries { outcome operation subject missingPermission requestId } hasMore
  }
}
"""
AUDIT_INTEGRITY = """
query Integrity($tenantId: ID!) { auditIntegrity(tenantId: $tenantId) { intact checkedEntries } }
"""


def new_id() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


async def metrics(gateway: Gateway) -> dict[str, float]:
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def security_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "ehr_gateway.security"]


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def denied_entries(gateway: Gateway, tenant_id: str) -> list[dict[str, Any]]:
    log = (await gateway.execute(AUDIT_LOG, tenantId=tenant_id))["auditLog"]
    assert log["hasMore"] is False
    return [entry for entry in log["entries"] if entry["outcome"] == "DENIED"]


OTHER_TENANT = 'ehrgw_denials_total{kind="other_tenant"}'
PERMISSION = 'ehrgw_denials_total{kind="permission"}'
COALESCED = "ehrgw_denials_coalesced_total"


async def test_a_flood_of_reads_of_another_tenant_writes_nothing_into_its_audit_log(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ehr_gateway.security")
    victim = new_id()
    await gateway.execute(SELECT_EPIC, tenantId=victim)
    before = await gateway.execute(AUDIT_INTEGRITY, tenantId=victim)
    attacker = gateway.as_caller(tenants=["acme"], roles=["viewer"], subject="mallory")

    requests = 10
    for _ in range(requests):
        body = await attacker.post(FLOOD, tenantId=victim)
        assert set(body["data"].values()) == {None} and codes(body) == ["FORBIDDEN"] * ALIASES

    assert await denied_entries(gateway, victim) == []
    assert await gateway.execute(AUDIT_INTEGRITY, tenantId=victim) == before
    lines = security_lines(caplog)
    assert len(lines) == requests * ALIASES
    line = lines[0].__dict__
    assert (line["subject"], line["tenants"], line["tenantId"]) == ("mallory", "acme", victim)
    assert (line["operation"], line["permission"]) == ("integrationSettings", "settings:read")
    assert (line["kind"], line["audited"]) == ("other_tenant", False)
    assert line["request_id"]
    assert line["request_id"] != lines[-1].__dict__["request_id"]
    assert lines[0].levelno == logging.WARNING
    samples = await metrics(gateway)
    assert samples[OTHER_TENANT] == requests * ALIASES
    assert samples[PERMISSION] == 0


async def test_tenants_that_do_not_exist_get_no_audit_log_and_odd_ids_are_logged_safely(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ehr_gateway.security")
    attacker = gateway.as_caller(tenants=["acme"], roles=["viewer"], subject="mallory")
    nobody, long_id, odd_id = new_id(), "L" * 3000, "x\nFAKE level=info \u2028\ud800"

    for tenant_id in (nobody, long_id, odd_id):
        assert codes(await attacker.post(FLOOD, tenantId=tenant_id)) == ["FORBIDDEN"] * ALIASES

    for tenant_id in (nobody, long_id, odd_id):
        assert await denied_entries(gateway, tenant_id) == []
    records = security_lines(caplog)
    assert {record.__dict__["tenantId"] for record in records} == {
        nobody,
        "L" * 64 + "...(3000 chars)",
        odd_id,
    }
    for record in records:  # each one line as either formatter writes it, read back as sent
        line = JsonFormatter().format(record)
        assert line.isascii() and line.isprintable()
        assert json.loads(line)["tenantId"] == record.__dict__["tenantId"]
        assert "\n" not in TextFormatter().format(record)
    assert (await metrics(gateway))[OTHER_TENANT] == 3 * ALIASES


@pytest.mark.parametrize("subject", ["andré.dupré@clinique.example", "ana\u202eroot", "zoë\nFAKE"])
async def test_a_denial_log_line_reads_back_as_the_subject_that_was_refused(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, subject: str
) -> None:
    caplog.set_level(logging.WARNING, logger="ehr_gateway.security")
    caller = gateway.as_caller(tenants=["acme"], roles=["viewer"], subject=subject)

    assert codes(await caller.post(UPDATE_FHIR, tenantId="acme")) == ["FORBIDDEN"]

    [record] = security_lines(caplog)
    line = JsonFormatter().format(record)
    assert line.isascii() and line.isprintable()  # controls and bidi marks stay escaped
    logged = json.loads(line)
    assert logged["subject"] == subject
    assert f" by {subject} (tenants acme)" in logged["message"]
    text = TextFormatter().format(record)
    assert "\n" not in text and "\u202e" not in text
    assert f" by {escape_controls(subject)} (tenants acme)" in text


async def test_a_permission_refused_fifty_times_is_audited_once_and_counted_fifty_times(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ehr_gateway.security")
    tenant_id = new_id()
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"], subject="vera")

    attempts = 50
    for _ in range(attempts):
        assert codes(await viewer.post(UPDATE_FHIR, tenantId=tenant_id)) == ["FORBIDDEN"]

    entries = await denied_entries(gateway, tenant_id)
    # One per minute: two if the attempts happened to straddle the end of a minute.
    assert 1 <= len(entries) <= 2, entries
    first = entries[-1]
    assert {k: first[k] for k in ("operation", "subject", "missingPermission")} == {
        "operation": "updateFhirSettings",
        "subject": "vera",
        "missingPermission": "settings:edit",
    }
    assert first["requestId"]
    lines = security_lines(caplog)
    assert len(lines) == attempts  # every attempt is still logged
    assert sum(record.__dict__["audited"] for record in lines) == len(entries)
    assert {record.__dict__["kind"] for record in lines} == {"permission"}
    samples = await metrics(gateway)
    assert samples[PERMISSION] == attempts
    assert samples[COALESCED] == attempts - len(entries)
    assert samples[OTHER_TENANT] == 0
    integrity = (await gateway.execute(AUDIT_INTEGRITY, tenantId=tenant_id))["auditIntegrity"]
    assert integrity == {"intact": True, "checkedEntries": 1 + 1 + len(entries)}


async def test_a_first_refusal_is_audited_for_each_caller_and_operation(
    gateway: Gateway,
) -> None:
    tenant_id = new_id()
    await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    vera = gateway.as_caller(tenants=[tenant_id], roles=["viewer"], subject="vera")
    victor = gateway.as_caller(tenants=[tenant_id], roles=["viewer"], subject="victor")

    for caller, document in ((vera, UPDATE_FHIR), (vera, UPDATE_HEADERS), (victor, UPDATE_FHIR)):
        assert codes(await caller.post(document, tenantId=tenant_id)) == ["FORBIDDEN"]

    audited = [(e["subject"], e["operation"]) for e in await denied_entries(gateway, tenant_id)]
    assert audited == [
        ("victor", "updateFhirSettings"),
        ("vera", "updateHeaderSettings"),
        ("vera", "updateFhirSettings"),
    ]


async def test_staff_refused_on_made_up_tenants_write_no_audit_log(gateway: Gateway) -> None:
    """Staff belong to every tenant id, made-up ones included: refusals there start no chain
    for a tenant that does not exist, while one on a real tenant is still audited."""
    staff_viewer = gateway.as_caller(tenants=["*"], roles=["viewer"], subject="sam")
    made_up = [new_id() for _ in range(20)]
    real = new_id()
    await gateway.execute(SELECT_EPIC, tenantId=real)

    for tenant_id in [*made_up, real]:
        assert codes(await staff_viewer.post(UPDATE_FHIR, tenantId=tenant_id)) == ["FORBIDDEN"]

    for tenant_id in made_up:
        assert await denied_entries(gateway, tenant_id) == []
    assert [entry["subject"] for entry in await denied_entries(gateway, real)] == ["sam"]
