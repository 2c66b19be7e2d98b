"""updatePatientRestriction and evaluatePatientRestriction: CEL over the patient's age."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import (
    EVALUATE_PATIENT_RESTRICTION,
    INTEGRATION_SETTINGS,
    SELECT_PROVIDER,
    UPDATE_PATIENT_RESTRICTION,
)


async def _evaluate(gateway: Gateway, tenant_id: str, age: int) -> dict[str, object]:
    data = await gateway.execute(EVALUATE_PATIENT_RESTRICTION, tenantId=tenant_id, age=age)
    result: dict[str, object] = data["evaluatePatientRestriction"]
    return result


async def test_a_saved_expression_decides_who_is_restricted(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    data = await gateway.execute(
        UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age >= 13 && age < 18"
    )
    saved = data["updatePatientRestriction"]["settings"]
    assert saved["patientRestriction"] == {"expression": "age >= 13 && age < 18"}
    verdicts = {
        age: (await _evaluate(gateway, tenant_id, age))["restricted"] for age in (12, 13, 17, 18)
    }
    assert verdicts == {12: False, 13: True, 17: True, 18: False}


async def test_without_an_expression_nobody_is_restricted(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    assert await _evaluate(gateway, tenant_id, 5) == {
        "__typename": "RestrictionEvaluated",
        "restricted": False,
        "expression": None,
    }


async def test_null_removes_the_expression(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age < 18")
    await gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=None)
    assert (await _evaluate(gateway, tenant_id, 5))["restricted"] is False


@pytest.mark.parametrize(
    ("expression", "code", "message_part"),
    [
        ("age <", "INVALID_EXPRESSION", "Syntax error"),
        ("weight > 100", "UNKNOWN_VARIABLE", "weight"),
        ("age + true", "TYPE_ERROR", "No such overload"),
        ("age + 1", "NOT_BOOLEAN", "true or false"),
        ("__import__('os').system('true')", "UNSUPPORTED_EXPRESSION", "system"),
        ("x" * 1001, "TOO_LONG", "1000"),
        ("[1, 2].all(age, age > 0)", "UNSUPPORTED_MACRO", "not allowed"),
        ("[0, 1].exists(x, [0, 1].exists(y, age > x + y))", "UNSUPPORTED_MACRO", "not allowed"),
    ],
)
async def test_an_invalid_expression_is_refused_with_the_reason_and_not_stored(
    gateway: Gateway, tenant_id: str, expression: str, code: str, message_part: str
) -> None:
    await gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age < 18")
    data = await gateway.execute(
        UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=expression
    )
    result = data["updatePatientRestriction"]
    assert result["__typename"] == "ValidationFailed"
    [error] = result["errors"]
    assert (error["path"], error["code"]) == (["expression"], code)
    assert message_part in error["message"]
    stored = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    assert stored["integrationSettings"]["patientRestriction"] == {"expression": "age < 18"}
    assert stored["integrationSettings"]["version"] == 1


async def test_evaluating_for_an_impossible_age_or_unknown_tenant_is_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    unknown = await _evaluate(gateway, tenant_id, 30)
    assert unknown["__typename"] == "ValidationFailed"
    assert unknown["errors"] == [  # type: ignore[comparison-overlap]
        {"path": ["tenantId"], "code": "NOT_FOUND", "message": "no settings exist for this tenant"}
    ]
    await gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age < 18")
    negative = await _evaluate(gateway, tenant_id, -1)
    assert negative["errors"][0]["path"] == ["age"]  # type: ignore[index]


async def test_an_expression_that_fails_for_some_ages_reports_that_as_data(
    gateway: Gateway, tenant_id: str
) -> None:
    """Sampled checks cannot prove every age works; evaluation failures are results, not 500s."""
    saved = await gateway.execute(
        UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age / (age - 42) > 0"
    )
    assert saved["updatePatientRestriction"]["__typename"] == "SettingsSaved"
    assert (await _evaluate(gateway, tenant_id, 50))["restricted"] is True
    failed = await _evaluate(gateway, tenant_id, 42)
    assert failed["__typename"] == "ValidationFailed"
    assert failed["errors"][0]["path"] == ["expression"]  # type: ignore[index]
    assert failed["errors"][0]["code"] == "EVALUATION_ERROR"  # type: ignore[index]


async def test_the_expression_argument_must_be_sent(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age < 18")
    data = await gateway.execute(
        "mutation($t: ID!) { updatePatientRestriction(tenantId: $t) "
        "{ ... on ValidationFailed { errors { path code } } } }",
        t=tenant_id,
    )
    assert data["updatePatientRestriction"] == {
        "errors": [{"path": ["expression"], "code": "REQUIRED"}]
    }
    assert (await _evaluate(gateway, tenant_id, 5))["restricted"] is True
