"""Scalars the schema specifies more precisely than Strawberry's defaults."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

RFC_3339 = "https://www.rfc-editor.org/rfc/rfc3339"


def _rfc_3339(value: datetime) -> str:
    # The database gives aware UTC datetimes; a naive one is UTC too, and RFC 3339 needs the
    # offset written out.
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


# RFC 3339's date-time: a date, T, a time with hours 00-23, seconds 00-60 (60 at a leap second)
# and its offset, whose hours are 00-23 and minutes 00-59. Python and dateutil also take a bare
# date, no offset (read as local time: a client in UTC+2 would ask two hours off), hour 24, and
# offset minutes past 59 (+05:99 read as +06:39: a typo moving the instant by 40 minutes).
_RFC_3339_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)
_LEAP_SECOND = re.compile(r"(:[0-5]\d:)60(?:\.\d+)?")
DATE_TIME_EXPECTED = (
    "expected an RFC 3339 date and time with its UTC offset, such as 2026-05-04T09:30:00Z"
)
"""What a refused DateTime is told, in every error: it never quotes the value."""


def _parse_rfc_3339(value: object) -> datetime:
    # A plain ValueError: graphql-core then reports it at the literal or variable it came from
    # (a GraphQLError, as Strawberry raises, loses the location).
    if not isinstance(value, str) or not _RFC_3339_DATE_TIME.fullmatch(value):
        raise ValueError(DATE_TIME_EXPECTED)
    # Python's datetime has no second 60: a leap second is read as the last instant it can
    # hold before the next minute, so it still sorts after every instant of second 59.
    value, leap = _LEAP_SECOND.subn(r"\g<1>59.999999", value, count=1)
    try:
        # fromisoformat takes at most 6 fraction digits; RFC 3339 any number.
        whole, dot, rest = value.upper().partition(".")
        if dot:
            digits = re.match(r"\d+", rest)
            assert digits is not None
            whole += "." + digits.group()[:6].ljust(6, "0") + rest[digits.end() :]
        parsed = datetime.fromisoformat(whole)
    except ValueError:  # 30 February
        raise ValueError(DATE_TIME_EXPECTED) from None
    if leap and not _is_leap_second(parsed):
        # Read as second 59.999999, it would be a different instant than the one written.
        raise ValueError(DATE_TIME_EXPECTED)
    return parsed


def _is_leap_second(parsed: datetime) -> bool:
    """Whether second 60 is where RFC 3339 (5.7, Appendix D) has a leap second: the last
    minute of a UTC day at the end of a month, with an offset the local minute that is it."""
    utc = parsed.astimezone(UTC)
    return (utc.hour, utc.minute) == (23, 59) and (utc + timedelta(seconds=1)).day == 1


DATE_TIME: ScalarDefinition = dataclasses.replace(
    DateTimeDefinition,
    description="A date and time with its UTC offset, as RFC 3339 writes it (e.g. "
    "2026-05-04T09:30:00.123000+00:00).",
    specified_by_url=RFC_3339,
    serialize=_rfc_3339,
    parse_value=_parse_rfc_3339,
)

SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {datetime: DATE_TIME}
