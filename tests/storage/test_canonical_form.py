"""The canonical form that history, audit and document hashes are made over stays the standard
encoder's, byte for byte, now that orjson writes most values: every hash stored before still
verifies, and no two values share a form (orjson writes NaN as null, so a value holding a float
must not reach it)."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_gateway.storage.chain import _plain, canonical


class _Text(str):
    pass


class _Colour(enum.Enum):
    RED = "red"


def standard_form(value: Any) -> bytes:
    """The form every stored hash was made in."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    ).encode("utf-8", "surrogatepass")


def outcome(encode: Any, value: Any) -> bytes | str:
    try:
        written: bytes = encode(value)
    except (TypeError, ValueError) as error:
        return f"refused: {type(error).__name__}"
    return written


# Every code point, lone surrogates included (a client may send one in a JSON string).
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))
dates = st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=-5))))
leaves = (
    any_text
    | st.integers()
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | dates
    | st.binary(max_size=8)
    | st.builds(ObjectId)
    | any_text.map(_Text)
    | st.just(_Colour.RED)
)
keys = any_text | st.integers(-3, 3)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=600)
@given(values)
def test_the_canonical_form_is_the_standard_encoders(value: Any) -> None:
    assert outcome(canonical, value) == outcome(standard_form, value)


def test_a_history_entry_is_written_in_the_standard_form() -> None:
    entry = {
        "tenantId": "acme-health",
        "version": 7,
        "changedAt": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        "changedPaths": ["epic.context"],
        "settings": {"epic": {"context": 'Salle d\u2019attente \u2028 \x7f \x01 "quoted" \\'}},
        "audit": {"roles": ["integrator"], "requestId": None},
    }
    assert canonical(entry) == standard_form(entry)
    assert canonical(entry).startswith(b'{"audit":{"requestId":null,"roles":["integrator"]}')


def test_nan_and_null_do_not_share_a_form() -> None:
    assert canonical({"value": float("nan")}) != canonical({"value": None})
    assert canonical({"value": float("inf")}) != canonical({"value": None})
