"""Errors in reading a request (parsing, validation, variable coercion) without the submitted
values. graphql-core quotes offending values in these messages, and a value may be a secret (a
SOAP password sent with the wrong type, or under a misspelled field name). Rather than cut values
out, which cannot be done reliably when a value may contain any text, the message is rebuilt from
the parts that never carry a value: its opening up to the first value, the argument path, the type
and field names it mentions, and suggestions."""

from __future__ import annotations

import re

# Where a quoted value begins, in graphql-core's wording.
_VALUE_STARTS = re.compile(
    r" got invalid value |[,.;]? [Ff]ound:? |cannot represent [^:]*?value: |Value (?=['\"{\[\d-])"
)
_NAME = r"[_A-Za-z][_0-9A-Za-z]*"
_SAFE_PARTS = (
    re.compile(rf" at '({_NAME}(?:\.{_NAME}|\[\d+\])*)'"),
    re.compile(r"(\w+ cannot represent [\w -]*?value)"),
    re.compile(rf"(Field '{_NAME}' is not defined by type '{_NAME}')"),
    re.compile(rf"(does not exist in '{_NAME}' enum)"),
    re.compile(rf"(Field '{_NAME}' of required type '[\w!\[\]]+' was not provided)"),
    re.compile(rf"(Did you mean (?:'{_NAME}'(?:, | or |, or )?)+\?)"),
    re.compile(r"(must have exactly one non-null field|only one field must be non-null)"),
)


def without_values(message: str) -> str:
    """``message`` with nothing the client submitted in it (names of fields and types stay)."""
    start = _VALUE_STARTS.search(message)
    if start is None:
        return message
    opening = message[: start.start()].rstrip(" ,.;:")
    rest = message[start.start() :]
    parts = []
    for pattern in _SAFE_PARTS:
        for found in pattern.finditer(rest):
            text = found.group(1)
            if pattern is _SAFE_PARTS[0]:
                text = f"at '{text}'"
            elif text.startswith("does not exist"):
                text = f"the value {text}"
            parts.append(text)
    if opening.startswith("Variable"):
        opening += " has an invalid value"
    described = "; ".join(dict.fromkeys(parts))  # in order, without repeats
    message = f"{opening}: {described}" if described else opening
    return message if message.endswith(("?", ".")) else message + "."
