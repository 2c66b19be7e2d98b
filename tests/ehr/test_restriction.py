"""Patient restriction expressions (ehr/restriction.py): what a rule may contain, the program the
CEL runtime is given, and how it evaluates."""

from __future__ import annotations

import operator
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_gateway.ehr.restriction import (
    MAX_DEPTH,
    MAX_TOKENS,
    RestrictionError,
    check,
    compile_restriction,
)


def refused(source: str) -> str:
    """The code ``source`` is refused with at save time; its message never quotes the source
    (names are shown, short: the one that was not allowed)."""
    with pytest.raises(RestrictionError) as raised:
        compile_restriction(source)
    assert raised.value.message
    assert "marker" not in raised.value.message
    return raised.value.code


@pytest.mark.parametrize(
    ("source", "program"),
    [
        ("age < 18", "age < 18"),
        ("age >= 13 && age < 18", "age >= 13 && age < 18"),
        ("(age < 18)", "age < 18"),
        ("((age < 13) || (age > 65))", "age < 13 || age > 65"),
        ("age < 0x12", "age < 18"),
        ("age in [1, 2, 3]", "age in [1, 2, 3]"),
        ("!(age > 65)", "! (age > 65)"),
        ("age < 18 ? true : false", "age < 18 ? true : false"),
        ("- -1 < age", "- -1 < age"),
        ("age - (1 - 2) > 0", "age - (1 - 2) > 0"),
        ("age < 18 // a comment\n", "age < 18"),
        ("age\n<\r\n18", "age < 18"),
    ],
)
def test_the_runtime_is_given_the_checked_tree_written_out(source: str, program: str) -> None:
    assert check(source) == program
    assert check(program) == program  # written out, it reads back as itself


@pytest.mark.parametrize(
    ("source", "code"),
    [
        pytest.param("age < 'eighteen-years-marker", "INVALID_EXPRESSION", id="syntax"),
        pytest.param("age <", "INVALID_EXPRESSION", id="end-of-input"),
        pytest.param("age < 99999999999999999999", "INVALID_EXPRESSION", id="int-out-of-range"),
        pytest.param("age < 1e400", "INVALID_EXPRESSION", id="float-out-of-range"),
        pytest.param("patient_age < 18 || age < 0", "UNKNOWN_VARIABLE", id="unknown-name"),
        pytest.param("[1].map(x, x)[0] == 1", "UNSUPPORTED_MACRO", id="macro"),
        pytest.param("has(age.marker)", "UNSUPPORTED_MACRO", id="has"),
        pytest.param("age.weight > 1", "UNSUPPORTED_EXPRESSION", id="member-access"),
        pytest.param("size(age) > 1", "UNSUPPORTED_EXPRESSION", id="function-call"),
        pytest.param("age.weight() > 1", "UNSUPPORTED_EXPRESSION", id="method-call"),
        pytest.param("'marker' == 'marker'", "UNSUPPORTED_EXPRESSION", id="string"),
        pytest.param("b'marker' == b'marker'", "UNSUPPORTED_EXPRESSION", id="bytes"),
        pytest.param("18u < age", "UNSUPPORTED_EXPRESSION", id="unsigned"),
        pytest.param("age in age", "UNSUPPORTED_EXPRESSION", id="in-over-a-name"),
        pytest.param("age in [age]", "UNSUPPORTED_EXPRESSION", id="list-item-not-literal"),
        pytest.param("[1, 2] == [1, 2]", "UNSUPPORTED_EXPRESSION", id="list-outside-in"),
        pytest.param("{1: 2}[1] == 2", "UNSUPPORTED_EXPRESSION", id="map"),
        pytest.param("[1][0] == age", "UNSUPPORTED_EXPRESSION", id="indexing"),
        pytest.param("age + 1000", "NOT_BOOLEAN", id="not-boolean"),
        pytest.param("age < 18 && 5", "TYPE_ERROR", id="operand-not-boolean"),
        pytest.param("age / (age - 12) > 0", "TYPE_ERROR", id="fails-for-a-sample-age"),
    ],
)
def test_anything_but_a_rule_about_age_is_refused_with_its_reason(source: str, code: str) -> None:
    assert refused(source) == code


def test_the_most_telling_reason_is_given() -> None:
    # A macro outranks the indexing and the unknown loop variable around it.
    with pytest.raises(RestrictionError) as raised:
        check("[1].map(x, x)[0] == 1")
    assert "map" in raised.value.message


def test_an_expression_of_more_than_200_tokens_is_too_complex() -> None:
    # 49 comparisons of 3 tokens and 49 ||: 196 tokens; then one operand of n + 1 tokens.
    comparisons = " || ".join(["age < 1"] * 49)
    assert check(f"{comparisons} || !!!true").startswith("age < 1")  # 200 tokens
    with pytest.raises(RestrictionError) as raised:
        check(f"{comparisons} || !!!!true")  # 201
    assert raised.value.code == "TOO_COMPLEX"
    assert str(MAX_TOKENS) in raised.value.message
    assert refused(" || ".join(["age < 1"] * 60)) == "TOO_COMPLEX"


def test_an_expression_nested_deeper_than_64_is_too_complex() -> None:
    # A comparison is 2 levels (it and its operands), each parenthesis one more.
    fits = MAX_DEPTH - 2
    assert check("(" * fits + "age < 1" + ")" * fits) == "age < 1"
    assert refused("(" * (fits + 1) + "age < 1" + ")" * (fits + 1)) == "TOO_COMPLEX"
    assert refused("(" * MAX_DEPTH + "age < 1" + ")" * MAX_DEPTH) == "TOO_COMPLEX"
    assert refused("!" * (MAX_DEPTH + 1) + "true") == "TOO_COMPLEX"


def test_a_rule_that_fails_for_one_age_is_saved_and_reports_that_age_as_data() -> None:
    # The sample of ages cannot prove every age works: 42 is not in it.
    restriction = compile_restriction("age / (age - 42) > 0")
    assert restriction.is_restricted(age=50)
    with pytest.raises(RestrictionError) as raised:
        restriction.is_restricted(age=42)
    assert raised.value.code == "EVALUATION_ERROR"


OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
AGES = st.integers(min_value=0, max_value=200)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(OPERATORS)), AGES, AGES)
def test_a_comparison_restricts_exactly_the_ages_it_says(op: str, bound: int, age: int) -> None:
    restriction = compile_restriction(f"age {op} {bound}")
    assert restriction.is_restricted(age=age) is OPERATORS[op](age, bound)


@settings(max_examples=60, deadline=None)
@given(AGES, AGES, AGES)
def test_a_range_restricts_the_ages_inside_it(low: int, high: int, age: int) -> None:
    restriction = compile_restriction(f"age >= {low} && age < {high}")
    assert restriction.is_restricted(age=age) is (low <= age < high)


@settings(max_examples=60, deadline=None)
@given(st.lists(AGES, min_size=1, max_size=20), AGES)
def test_in_restricts_the_ages_listed(ages: list[int], age: int) -> None:
    restriction = compile_restriction(f"age in [{', '.join(map(str, ages))}]")
    assert restriction.is_restricted(age=age) is (age in ages)
    assert restriction.is_restricted(age=age) is not compile_restriction(
        f"!(age in {sorted(ages)})"
    ).is_restricted(age=age)
