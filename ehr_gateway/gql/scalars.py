"""Scalars the schema specifies more precisely than Strawberry's defaults."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

RFC_3339 = "https://www.rfc-editor.org/rfc/rfc3339"


def _rfc_3339(value: datetime) -> str:
    # The database gives aware UTC datetimes; a naive one is UTC too, and RFC 3339 needs the
    # offset written out.
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


DATE_TIME: ScalarDefinition = dataclasses.replace(
    DateTimeDefinition,
    description="A date and time with its UTC offset, as RFC 3339 writes it (e.g. "
    "2026-05-04T09:30:00.123000+00:00).",
    specified_by_url=RFC_3339,
    serialize=_rfc_3339,
)

SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {datetime: DATE_TIME}
