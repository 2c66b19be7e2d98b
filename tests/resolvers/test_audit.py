"""resolvers/audit.py called directly: the audit log of writes and of denied attempts, its
integrity, and the difference between two versions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.audit import (
    audit_integrity,
    audit_log,
    current_operation,
    record_denial,
    settings_diff,
)
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.settings import select_provider, update_block
from ehr_gateway.runtime.access import Forbidden, Permission, Role
from tests.resolvers.conftest import as_caller
from tests.resolvers.helpers import failed, saved

EPIC = EhrProvider.EPIC


@pytest.fixture
def operation() -> Iterator[None]:
    """The operation name the GraphQL layer sets around a root field, set here without it."""
    token = current_operation.set("updateEhrSettings")
    yield
    current_operation.reset(token)


async def test_each_stored_version_has_an_audit_entry_with_its_changes_redacted(
    context: Context, tenant_id: str, operation: None
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    patch = {"soapUsername": "svc", "soapPassword": "pw-in-the-log?"}
    saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, patch, 1))

    entries, more = await audit_log(context, tenant_id, first=10, before=None)

    assert [(e.version, e.outcome, e.subject) for e in entries] == [
        (2, "SAVED", "staff"), (1, "SAVED", "staff"),
    ]  # fmt: skip
    assert not more
    newest = entries[0]
    assert newest.operation == "updateEhrSettings"
    assert newest.request_id == context.request_id
    password = next(c for c in newest.changes if c["path"].endswith("soapPassword"))
    assert password["after"]["isSet"] is True
    assert "pw-in-the-log?" not in repr(newest)
    integrity, resume_after = await audit_integrity(context, tenant_id)
    assert integrity.intact and resume_after is None, integrity


async def test_a_denied_attempt_on_the_callers_own_tenant_is_audited_once_a_minute(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    editor = as_caller(context, [Role.EDITOR], [tenant_id])
    denied = Forbidden(Permission.WRITE_SECRETS, tenant_id)

    await record_denial(editor, denied, "updateEhrSettings")
    await record_denial(editor, denied, "updateEhrSettings")  # a repeat: logged, not audited

    entries, _ = await audit_log(context, tenant_id, first=10, before=None)
    denials = [e for e in entries if e.outcome == "DENIED"]
    assert [(e.subject, e.operation, e.missing_permission) for e in denials] == [
        ("caller", "updateEhrSettings", "secrets:write")
    ]
    assert context.denials.coalesced == 1


async def test_a_denied_attempt_on_another_tenant_is_never_in_its_log(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    stranger = as_caller(context, [Role.INTEGRATOR], ["tenant-elsewhere"])
    await record_denial(stranger, Forbidden(Permission.READ, tenant_id), "integrationSettings")
    entries, _ = await audit_log(context, tenant_id, first=10, before=None)
    assert [e.outcome for e in entries] == ["SAVED"]
    assert context.denials.by_kind["other_tenant"] == 1


async def test_the_diff_between_two_versions_either_way_round(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, {"context": "A"}, 1))
    saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, {"context": "B"}, 2))

    forward = await settings_diff(context, tenant_id, 2, 3)
    assert forward == [{"path": "providers.EPIC.ehr.context", "before": "A", "after": "B"}]
    backward = await settings_diff(context, tenant_id, 3, 2)
    assert backward == [{"path": "providers.EPIC.ehr.context", "before": "B", "after": "A"}]
    from_nothing = await settings_diff(context, tenant_id, 0, 1)
    assert isinstance(from_nothing, list)
    assert {"path": "provider", "before": None, "after": "EPIC"} in from_nothing
    assert failed(await settings_diff(context, tenant_id, 1, 9)) == [
        (("toVersion",), "UNKNOWN_VERSION")
    ]
    assert failed(await settings_diff(context, tenant_id, -1, 1)) == [
        (("fromVersion",), "OUT_OF_RANGE")
    ]


async def test_an_id_that_names_no_tenant_has_an_empty_log(context: Context) -> None:
    assert await audit_log(context, "../x", first=10, before=None) == ([], False)
    assert await audit_log(context, "tenant-1", first=10, before="\ud800") == ([], False)
