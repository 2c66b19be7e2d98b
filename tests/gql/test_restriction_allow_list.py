"""What a patient restriction expression may contain is decided on a CEL parse: comparisons,
boolean logic, arithmetic, `?:` and `in` over a list of literals, over `age`. Every other shape
(macros however spelled, function and method calls, member access, indexing, maps, messages,
strings, other names) and anything nested or sized past the limits is refused with a typed code
when saved or imported, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import (
    EVALUATE_PATIENT_RESTRICTION,
    EXPORT_SETTINGS,
    INTEGRATION_SETTINGS,
    SELECT_PROVIDER,
    UPDATE_PATIENT_RESTRICTION,
)

IMPORT_SETTINGS = """
mutation ImportSettings($tenantId: ID!, $doc: JSON!) {
  importSettings(tenantId: $tenantId, document: $doc, dryRun: false) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

FORTY = "[" + ",".join("0" * 40) + "]"
# The attack payload: three comprehensions nested over 40-element lists, 64,000 iterations,
# with the macro names split from their parentheses by comments, which the old regex missed.
NESTED_COMPREHENSIONS = (
    f"{FORTY}.map//\n(x, {FORTY}.map//\n(y, {FORTY}.map//\n(z, x + y + z)))[0][0][0] == age"
)
assert 300 <= len(NESTED_COMPREHENSIONS) <= 320

REFUSED: list[tuple[str, str, str]] = [
    # (expression, code, a word the message names)
    ("[1, 2, 3].map//\n(x, x * age)[0] > 10", "UNSUPPORTED_MACRO", "map"),
    # Past the token limit, the parser stops reading before it reaches the third `map`.
    (NESTED_COMPREHENSIONS, "TOO_COMPLEX", "tokens"),
    (f"{FORTY}.all //\n (x, {FORTY}.all(y, x + y < age))", "UNSUPPORTED_MACRO", "all"),
    (f"{FORTY}.\nexists// exists\n(x, x > age)", "UNSUPPORTED_MACRO", "exists"),
    (f"{FORTY}.//\nfilter\t(x, x == age)[0] == 0", "UNSUPPORTED_MACRO", "filter"),
    ("[age].exists_one(x, x > 1)", "UNSUPPORTED_MACRO", "exists_one"),
    ("has(age.years)", "UNSUPPORTED_MACRO", "has"),
    ('size("x") > 0 && age > 1', "UNSUPPORTED_EXPRESSION", "size"),
    ('string(age) == "18"', "UNSUPPORTED_EXPRESSION", "string"),
    ('int("18") == age', "UNSUPPORTED_EXPRESSION", "int"),
    (
        'timestamp("2020-01-01T00:00:00Z") < timestamp("2021-01-01T00:00:00Z")',
        "UNSUPPORTED_EXPRESSION",
        "timestamp",
    ),
    ("age.size() > 1", "UNSUPPORTED_EXPRESSION", "size"),
    ("age.years > 1", "UNSUPPORTED_EXPRESSION", "member access"),
    ("age[0] > 1", "UNSUPPORTED_EXPRESSION", "indexing"),
    ("{1: true}[age]", "UNSUPPORTED_EXPRESSION", "indexing"),
    ("age in {1: true}", "UNSUPPORTED_EXPRESSION", "map"),
    ("google.protobuf.Int64Value{value: 1} == age", "UNSUPPORTED_EXPRESSION", "message"),
    ("[1, 2] == [1, 2] || age > 1", "UNSUPPORTED_EXPRESSION", "list outside"),
    ("age in [age, 1]", "UNSUPPORTED_EXPRESSION", "literal"),
    ('age > 1 && "x" in ["x"]', "UNSUPPORTED_EXPRESSION", "string"),
    ("patient.age > 1", "UNSUPPORTED_EXPRESSION", "member access"),
    ("weight > 100 || age < 2", "UNKNOWN_VARIABLE", "weight"),
    # Deep nesting stops at the parse: never handed to the CEL runtime's own parser.
    ("(" * 90 + "age" + ")" * 90 + " > 1", "TOO_COMPLEX", "deeper"),
    ("!" * 100 + "(age > 1)", "TOO_COMPLEX", "deeper"),
    ("age in [" + ",".join("0" * 300) + "]", "TOO_COMPLEX", "tokens"),
    # A string of escapes with no closing quote: the library grammar's own string pattern
    # backtracks exponentially on it (seconds at 18 pairs); this one fails at once.
    ('age == "' + "\\\\" * 40, "INVALID_EXPRESSION", "Syntax error"),
    ('age == "' + "\\\\" * 40 + '"', "UNSUPPORTED_EXPRESSION", "string"),
]

ALLOWED: list[tuple[str, set[int]]] = [
    # (expression, the ages among 0, 1, 14, 30, 40, 65, 90 it restricts)
    ("age < 18", {0, 1, 14}),
    ("age >= 65 || age < 2", {0, 1, 65, 90}),
    ("age in [13, 14, 15]", {14}),
    ("age < 18 ? true : false", {0, 1, 14}),
    ("(age + 1) * 2 > 30 && !(age == 40)", {30, 65, 90}),
    ("age % 2 == 0", {0, 14, 30, 40, 90}),
    ("age >= 13 // a teenager\n  && age < 18 // not yet an adult", {14}),
    ("age - 1 in [-1, 0] || age / 10 == 9", {0, 1, 90}),
]
AGES = (0, 1, 14, 30, 40, 65, 90)


async def _settings(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    data = await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id)
    settings: dict[str, Any] = data["integrationSettings"]
    return settings


@pytest.mark.parametrize(("expression", "code", "named"), REFUSED)
async def test_a_shape_outside_the_allow_list_is_refused_on_save_and_nothing_stored(
    gateway: Gateway, tenant_id: str, expression: str, code: str, named: str
) -> None:
    await gateway.execute(UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression="age < 18")
    data = await gateway.execute(
        UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=expression
    )
    result = data["updatePatientRestriction"]
    assert result["__typename"] == "ValidationFailed"
    [error] = result["errors"]
    assert (error["path"], error["code"]) == (["expression"], code)
    assert named in error["message"]
    stored = await _settings(gateway, tenant_id)
    assert stored["patientRestriction"] == {"expression": "age < 18"}
    assert stored["version"] == 1


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        (NESTED_COMPREHENSIONS, "TOO_COMPLEX"),
        ("[1, 2, 3].exists//\n(x, x == age)", "UNSUPPORTED_MACRO"),
        ('string(age) == "18"', "UNSUPPORTED_EXPRESSION"),
        ("age.years > 1", "UNSUPPORTED_EXPRESSION"),
        ("(" * 150 + "age" + ")" * 150 + " > 1", "TOO_COMPLEX"),
    ],
)
async def test_import_refuses_the_same_expressions_and_stores_nothing(
    gateway: Gateway, tenant_id: str, expression: str, code: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    document = (await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))["exportSettings"]
    document["patientRestriction"] = expression
    result = (await gateway.execute(IMPORT_SETTINGS, tenantId=tenant_id, doc=document))[
        "importSettings"
    ]
    assert result["__typename"] == "ValidationFailed"
    [error] = result["errors"]
    assert (error["path"], error["code"]) == (["document", "patientRestriction"], code)
    stored = await _settings(gateway, tenant_id)
    assert stored["patientRestriction"] == {"expression": None}
    assert stored["version"] == 1


@pytest.mark.parametrize(("expression", "restricted"), ALLOWED)
async def test_a_realistic_rule_is_saved_and_decides_by_age(
    gateway: Gateway, tenant_id: str, expression: str, restricted: set[int]
) -> None:
    data = await gateway.execute(
        UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=expression
    )
    saved = data["updatePatientRestriction"]
    assert saved["__typename"] == "SettingsSaved"
    assert saved["settings"]["patientRestriction"] == {"expression": expression}
    verdicts = set()
    for age in AGES:
        outcome = await gateway.execute(EVALUATE_PATIENT_RESTRICTION, tenantId=tenant_id, age=age)
        if outcome["evaluatePatientRestriction"]["restricted"]:
            verdicts.add(age)
    assert verdicts == restricted


async def test_the_deepest_and_largest_allowed_rules_are_saved(
    gateway: Gateway, tenant_id: str
) -> None:
    """The limits leave room for real rules, and what they admit the CEL runtime compiles."""
    deep = "(" * 30 + "age" + " + 1)" * 30 + " > 40"
    wide = "age in [" + ",".join(str(n) for n in range(90)) + "]"
    chain = " || ".join(f"age == {n}" for n in range(45))
    for expression in (deep, wide, chain):
        data = await gateway.execute(
            UPDATE_PATIENT_RESTRICTION, tenantId=tenant_id, expression=expression
        )
        assert data["updatePatientRestriction"]["__typename"] == "SettingsSaved", expression
