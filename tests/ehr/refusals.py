"""How a model refuses a value, in the terms the API reports it: the field path and the stable
code (``ehr.errors.field_errors``), checked on pydantic's own error location."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ehr_gateway.ehr.errors import field_errors

Refusal = tuple[tuple[str, ...], str]


def refusals(
    model: type[BaseModel],
    data: dict[str, Any],
    context: dict[str, Any] | None = None,
    sent: Collection[str] | None = None,
) -> list[Refusal]:
    """Each (path, code) ``model`` refuses ``data`` with; fails the test if it accepts it. Every
    message is checked not to repeat a submitted text value."""
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data, context=context)
    errors = field_errors(raised.value, sent=sent)
    for error in errors:
        assert error.message
        for value in _texts(data):
            assert value not in error.message, f"{value!r} echoed in {error.message!r}"
    return [(error.path, error.code) for error in errors]


def refusal(
    model: type[BaseModel], data: dict[str, Any], context: dict[str, Any] | None = None
) -> Refusal:
    """The one (path, code) ``model`` refuses ``data`` with."""
    (found,) = refusals(model, data, context)
    return found


def _texts(value: Any) -> list[str]:
    """The submitted text values long enough to be recognised inside a message."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return [value] if isinstance(value, str) and len(value.strip()) >= 4 else []
