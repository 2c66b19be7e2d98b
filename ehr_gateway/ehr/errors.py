"""Validation failures as the API reports them: a field path, a stable code, a message."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

# Pydantic's own error types, renamed to the codes the API promises to keep stable.
_CODES = {
    "missing": "REQUIRED",
    "string_too_long": "TOO_LONG",
    "string_too_short": "TOO_SHORT",
    "too_long": "TOO_MANY",
    "greater_than_equal": "OUT_OF_RANGE",
    "less_than_equal": "OUT_OF_RANGE",
    "extra_forbidden": "UNKNOWN_FIELD",
    "enum": "INVALID_CHOICE",
    "int_parsing": "INVALID_TYPE",
    "int_type": "INVALID_TYPE",
    # From JSON (an import document), not GraphQL's Int: 1.5, or 1e30 past any integer.
    "int_from_float": "INVALID_TYPE",
    "int_parsing_size": "OUT_OF_RANGE",
    "string_type": "INVALID_TYPE",
    "bool_type": "INVALID_TYPE",
    "bool_parsing": "INVALID_TYPE",
    "list_type": "INVALID_TYPE",
    "model_type": "INVALID_TYPE",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a value was refused. ``message`` never contains the submitted value."""

    path: tuple[str, ...]
    code: str
    message: str


def field_errors(
    error: ValidationError, prefix: Sequence[str] = (), sent: Collection[str] | None = None
) -> list[FieldError]:
    """Pydantic's errors as FieldErrors under ``prefix``. A rule that spans several fields names
    the field it blames in its context (``field``) and every field it reads (``fields``). Given
    the fields a partial update ``sent``, the error is put on one of them, so that a form shows
    it next to the input the user changed: the blamed one if it was sent, else the first sent
    field the rule reads (the message names the others)."""
    found: list[FieldError] = []
    for detail in error.errors(include_input=False, include_url=False):
        path = [str(part) for part in detail["loc"]]
        ctx = detail.get("ctx") or {}
        blamed = ctx.get("field")
        if blamed and sent is not None and blamed not in sent:
            blamed = next((name for name in ctx.get("fields", ()) if name in sent), blamed)
        if blamed:
            path.append(str(blamed))
        code = _CODES.get(detail["type"], detail["type"].upper())
        found.append(FieldError(tuple(prefix) + tuple(path), code, detail["msg"]))
    return found
