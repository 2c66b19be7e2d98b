"""Patient restriction rules as organisations write them: minors, teenagers (whose records
some states restrict from parents), and patients over 89, whose age HIPAA counts as an
identifier."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import EVALUATE_PATIENT_RESTRICTION, UPDATE_PATIENT_RESTRICTION
from tests.ehr.customer_values import saved, select

RULES = [
    pytest.param("age < 18", {17: True, 18: False}, id="minors"),
    pytest.param("age >= 13 && age < 18", {12: False, 13: True, 17: True, 18: False}, id="teens"),
    pytest.param("age > 89", {89: False, 90: True}, id="hipaa-over-89"),
    pytest.param(
        "age < 18 || age > 89  // minors, and ages HIPAA treats as identifying",
        {5: True, 40: False, 95: True},
        id="with-a-comment",
    ),
]


@pytest.mark.parametrize(("expression", "ages"), RULES)
async def test_a_restriction_rule_is_saved_as_written_and_decides_by_age(
    gateway: Gateway, tenant_id: str, expression: str, ages: dict[int, bool]
) -> None:
    await select(gateway, tenant_id, "EPIC")

    stored = await saved(
        gateway, UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=expression
    )
    decided = {
        age: (await gateway.execute(EVALUATE_PATIENT_RESTRICTION, tenantId=tenant_id, age=age))[
            "evaluatePatientRestriction"
        ]["restricted"]
        for age in ages
    }

    assert stored["patientRestriction"]["expression"] == expression
    assert decided == ages
