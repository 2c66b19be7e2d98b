"""resolvers/settings.py called directly: selecting a provider, block updates with and without
expectedVersion, conflicts, refusals, secrets, and the patient restriction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.ehr.epic import EpicFhirSettings, EpicSettings
from ehr_gateway.ehr.errors import FieldError
from ehr_gateway.ehr.identifiers import US_SSN_OID
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Conflict, Failed, Outcome
from ehr_gateway.resolvers.settings import (
    effective_block,
    evaluate_patient_restriction,
    get_settings,
    readiness,
    select_provider,
    update_block,
    update_patient_restriction,
)
from ehr_gateway.resolvers.writes import Idempotency, current_idempotency
from ehr_gateway.runtime.access import Forbidden, Permission, Role
from tests.resolvers.conftest import as_caller
from tests.resolvers.helpers import failed, saved

EPIC, ATHENA, ELLKAY = EhrProvider.EPIC, EhrProvider.ATHENA, EhrProvider.ELLKAY


async def epic_tenant(context: Context, tenant_id: str) -> int:
    return saved(await select_provider(context, tenant_id, EPIC, 0))


async def ehr(
    context: Context, tenant_id: str, patch: dict[str, Any], expected: int | None
) -> Outcome:
    return await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, patch, expected)


async def test_a_save_with_the_current_version_stores_the_next(
    context: Context, tenant_id: str
) -> None:
    assert await get_settings(context, tenant_id) is None
    assert await epic_tenant(context, tenant_id) == 1

    assert saved(await ehr(context, tenant_id, {"context": "Scheduling"}, 1)) == 2

    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.version == 2 and stored.updated_by == "staff"
    block = stored.block(EPIC, SettingsBlock.EHR)
    assert isinstance(block, EpicSettings) and block.context == "Scheduling"


async def test_a_save_with_a_stale_version_is_a_conflict_and_stores_nothing(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    await ehr(context, tenant_id, {"context": "Scheduling"}, 1)

    outcome = await ehr(context, tenant_id, {"context": "Refills"}, 1)

    assert outcome == Conflict(2)
    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.version == 2
    assert stored.providers[EPIC].ehr == {"context": "Scheduling"}


async def test_without_expected_version_a_save_applies_to_the_current_one(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    await ehr(context, tenant_id, {"context": "Scheduling"}, None)
    assert saved(await ehr(context, tenant_id, {"vipFlagType": "VIP"}, None)) == 3
    stored = await get_settings(context, tenant_id)
    assert stored is not None
    assert stored.providers[EPIC].ehr == {"context": "Scheduling", "vipFlagType": "VIP"}


async def test_a_save_that_changes_nothing_stores_no_version(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    await ehr(context, tenant_id, {"context": "Scheduling"}, None)
    assert saved(await ehr(context, tenant_id, {"context": "Scheduling"}, 2)) == 2


async def test_a_null_clears_a_field_back_to_its_default(context: Context, tenant_id: str) -> None:
    await epic_tenant(context, tenant_id)
    await ehr(context, tenant_id, {"maxAllowedSlotSearchDateRangeDays": 120, "context": "S"}, None)
    await ehr(context, tenant_id, {"maxAllowedSlotSearchDateRangeDays": None}, None)
    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.providers[EPIC].ehr == {"context": "S"}


async def test_a_refused_value_is_reported_under_the_input_member(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    outcome = await ehr(context, tenant_id, {"context": "", "jkuServerUrl": "ftp://k.example"}, 1)
    assert sorted(failed(outcome)) == [
        (("input", "epic", "context"), "TOO_SHORT"),
        (("input", "epic", "jkuServerUrl"), "INVALID_URL"),
    ]
    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.version == 1


async def test_a_rule_over_two_fields_is_reported_at_the_field_the_save_sent(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    await ehr(context, tenant_id, {"epicMaximumSlotSearchDateRangeInDays": 100,
                                   "maxAllowedSlotSearchDateRangeDays": 120}, None)  # fmt: skip
    outcome = await ehr(context, tenant_id, {"maxAllowedSlotSearchDateRangeDays": None}, None)
    assert failed(outcome) == [
        (("input", "epic", "maxAllowedSlotSearchDateRangeDays"), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL")
    ]


async def test_a_block_needs_a_provider_and_the_active_providers_member(
    context: Context, tenant_id: str
) -> None:
    patch = {"practiceId": "195900"}
    outcome = await update_block(context, tenant_id, SettingsBlock.EHR, ATHENA, patch, None)
    assert failed(outcome) == [(("provider",), "PROVIDER_NOT_SELECTED")]
    await epic_tenant(context, tenant_id)
    outcome = await update_block(context, tenant_id, SettingsBlock.EHR, ATHENA, patch, None)
    assert failed(outcome) == [(("input", "athena"), "WRONG_PROVIDER")]


async def test_a_block_the_ehr_does_not_have_is_not_applicable(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, ELLKAY, None))
    outcome = await update_block(context, tenant_id, SettingsBlock.FHIR, ELLKAY, {}, None)
    assert failed(outcome) == [(("input", "ellkay"), "NOT_APPLICABLE")]


@pytest.mark.parametrize("tenant", ["", "-starts-with-hyphen", "a" * 65, "tenant/../x"])
async def test_a_text_that_names_no_tenant_is_refused_and_never_read(
    context: Context, tenant: str
) -> None:
    assert failed(await select_provider(context, tenant, EPIC, None)) == [
        (("tenantId",), "INVALID_TENANT_ID")
    ]
    assert await get_settings(context, tenant) is None


async def test_a_negative_expected_version_is_out_of_range(
    context: Context, tenant_id: str
) -> None:
    assert failed(await select_provider(context, tenant_id, EPIC, -1)) == [
        (("expectedVersion",), "OUT_OF_RANGE")
    ]


async def test_switching_provider_and_back_restores_the_blocks(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    await ehr(context, tenant_id, {"context": "Scheduling"}, None)
    saved(await select_provider(context, tenant_id, ATHENA, None))
    saved(await select_provider(context, tenant_id, EPIC, None))
    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.providers[EPIC].ehr == {"context": "Scheduling"}


# --- Secrets ------------------------------------------------------------------------------------


async def test_a_secret_is_stored_sealed_and_sending_it_again_changes_nothing(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    version = saved(
        await ehr(context, tenant_id, {"soapUsername": "svc", "soapPassword": "pw-1"}, 1)
    )
    stored = await get_settings(context, tenant_id)
    assert stored is not None
    secret = stored.providers[EPIC].ehr["soapPassword"]
    assert secret["ciphertext"] and "pw-1" not in str(secret)
    assert saved(await ehr(context, tenant_id, {"soapPassword": "pw-1"}, version)) == version
    assert saved(await ehr(context, tenant_id, {"soapPassword": "pw-2"}, version)) == version + 1


@pytest.mark.parametrize(
    ("password", "code"),
    [("", "TOO_SHORT"), ("p" * 1025, "TOO_LONG"), ("pw\ud800", "INVALID_TEXT"),
     ("pw\nline", "CONTROL_CHARACTER")],
)  # fmt: skip
async def test_a_secret_that_cannot_be_a_password_is_refused_before_it_is_sealed(
    context: Context, tenant_id: str, password: str, code: str
) -> None:
    await epic_tenant(context, tenant_id)
    outcome = await ehr(context, tenant_id, {"soapUsername": "svc", "soapPassword": password}, 1)
    assert failed(outcome) == [(("input", "epic", "soapPassword"), code)]


# --- Denied roles: settings that need more than the block's permission ---------------------------


async def test_an_editor_may_not_send_a_secret_at_all(context: Context, tenant_id: str) -> None:
    await epic_tenant(context, tenant_id)
    editor = as_caller(context, [Role.EDITOR], [tenant_id])
    with pytest.raises(Forbidden) as denied:
        await ehr(editor, tenant_id, {"soapUsername": "svc", "soapPassword": "pw-1"}, 1)
    assert denied.value.permission is Permission.WRITE_SECRETS
    assert denied.value.fields == ("providers.EPIC.ehr.soapPassword",)
    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.version == 1


async def test_an_editor_may_not_change_a_trust_setting_but_may_save_the_rest(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    editor = as_caller(context, [Role.EDITOR], [tenant_id])
    with pytest.raises(Forbidden) as denied:
        await ehr(editor, tenant_id, {"jkuServerUrl": "https://keys.example.test/jwks"}, 1)
    assert denied.value.permission is Permission.INTEGRATE
    assert denied.value.fields == ("providers.EPIC.ehr.jkuServerUrl",)
    assert saved(await ehr(editor, tenant_id, {"context": "Scheduling"}, 1)) == 2
    integrator = as_caller(context, [Role.INTEGRATOR], [tenant_id])
    assert (
        saved(await ehr(integrator, tenant_id, {"jkuServerUrl": "https://k.example.test/j"}, 2))
        == 3
    )


# --- What takes effect, readiness, the patient restriction --------------------------------------


async def test_the_effective_block_has_the_deployment_defaults(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    stored = await get_settings(context, tenant_id)
    assert stored is not None
    fhir = effective_block(context, stored, SettingsBlock.FHIR)
    assert isinstance(fhir, EpicFhirSettings) and fhir.ssn_identifier == US_SSN_OID
    assert stored.providers[EPIC].fhir == {}  # the default is not stored


async def test_readiness_is_read_from_the_stored_settings(context: Context, tenant_id: str) -> None:
    settings, found = await readiness(context, tenant_id)
    assert settings is None and [c.path for c in found.missing] == [("provider",)]
    await epic_tenant(context, tenant_id)
    _, found = await readiness(context, tenant_id)
    assert ("ehr", "context") in {c.path for c in found.missing}


async def test_a_restriction_is_checked_before_it_is_stored(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    outcome = await update_patient_restriction(context, tenant_id, "age + 1000", 1)
    assert isinstance(outcome, Failed)
    assert outcome.errors == (
        FieldError(("expression",), "NOT_BOOLEAN", outcome.errors[0].message),
    )
    assert failed(await update_patient_restriction(context, tenant_id, "a" * 1001, 1)) == [
        (("expression",), "TOO_LONG")
    ]
    assert saved(await update_patient_restriction(context, tenant_id, "age < 18", 1)) == 2


async def test_a_restriction_is_evaluated_for_a_patient(context: Context, tenant_id: str) -> None:
    assert failed(await evaluate_patient_restriction(context, tenant_id, 10)) == [
        (("tenantId",), "NOT_FOUND")
    ]
    await epic_tenant(context, tenant_id)
    assert await evaluate_patient_restriction(context, tenant_id, 10) == (False, None)
    await update_patient_restriction(context, tenant_id, "age >= 13 && age < 18", None)
    assert await evaluate_patient_restriction(context, tenant_id, 15) == (
        True, "age >= 13 && age < 18",
    )  # fmt: skip
    assert await evaluate_patient_restriction(context, tenant_id, 30) == (
        False, "age >= 13 && age < 18",
    )  # fmt: skip
    assert failed(await evaluate_patient_restriction(context, tenant_id, 201)) == [
        (("age",), "OUT_OF_RANGE")
    ]
    assert saved(await update_patient_restriction(context, tenant_id, None, None)) == 3


# --- Idempotent retries, keyed as the GraphQL layer keys them but set here directly -------------


@contextmanager
def idempotency_key(request: bytes) -> Iterator[None]:
    """Writes under the idempotency key ``retry-1`` of the caller ``staff``, for ``request``:
    what the GraphQL layer sets from the Idempotency-Key header around a mutation."""
    token = current_idempotency.set(Idempotency("retry-1", "staff", request))
    try:
        yield
    finally:
        current_idempotency.reset(token)


async def test_a_retry_with_the_same_key_is_answered_with_the_first_version(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    with idempotency_key(b"updateEhrSettings context=Scheduling"):
        assert saved(await ehr(context, tenant_id, {"context": "Scheduling"}, 1)) == 2

        again = await ehr(context, tenant_id, {"context": "Scheduling"}, 1)  # not a conflict

    assert saved(again) == 2
    stored = await get_settings(context, tenant_id)
    assert stored is not None and stored.version == 2


async def test_the_same_key_for_another_request_is_refused(
    context: Context, tenant_id: str
) -> None:
    await epic_tenant(context, tenant_id)
    with idempotency_key(b"updateEhrSettings context=Scheduling"):
        saved(await ehr(context, tenant_id, {"context": "Scheduling"}, 1))
    with idempotency_key(b"updateEhrSettings context=Refills"):
        outcome = await ehr(context, tenant_id, {"context": "Refills"}, 2)
    assert failed(outcome) == [(("idempotencyKey",), "IDEMPOTENCY_KEY_REUSED")]
