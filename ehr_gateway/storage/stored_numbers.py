"""Which stored numbers are a gateway's.

Every number a gateway stores in an entry or a document (a version, an audit sequence number,
a count) starts at 0 or 1 and grows by one per write, and is shown through GraphQL's ``Int``,
a 32-bit signed integer. BSON holds 64-bit integers without complaint, so a database writer
can store one past that range: read as a number of the right type, it would reach an ``Int``
field and fail the whole answer (an internal error) instead of being named as an entry no
gateway wrote. A number outside the range is therefore a type no gateway writes, like text or
a list where a number belongs, and so is a bool (Python's int subclass; BSON's boolean)."""

from __future__ import annotations

from typing import Any, TypeGuard

# GraphQL's Int: "a signed 32-bit integer" (GraphQL specification, Int).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


def is_stored_number(value: Any) -> TypeGuard[int]:
    """Whether ``value`` is a number a gateway stores: an integer GraphQL's Int holds."""
    # A subclass of int too (bson.Int64 is what a 64-bit integer is read as), never a bool.
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX
