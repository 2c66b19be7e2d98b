"""The filter that picks one tenant's history and audit entries, and the walk over tenants in id
order that steps over entries whose tenant is not text.

``{"tenantId": {"$eq": id}}``, never the bare ``{"tenantId": id}``, though MongoDB reads both
alike. The embedded server (nx-27017 on SQLite) reads a bare value as "equal to it, or an array
containing it", an OR that its SQLite planner cannot answer from the ``(tenantId, ...)``
indexes unless a single-field index on ``tenantId`` exists: every such find, even of one
version, read every entry of every tenant, so a page of history cost as much as the whole
collection. ``$eq`` is answered from the index, and a sort on the index's second key with a
limit stops at the limit, as on MongoDB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pymongo.asynchronous.collection import AsyncCollection

# Where a walk over tenants in id order starts: every tenant id a gateway writes is non-empty text.
TEXT_TENANTS: Final[Mapping[str, str]] = {"$gt": ""}


def tenant_is(tenant_id: str) -> dict[str, str]:
    """The ``tenantId`` condition of a find on one tenant's entries."""
    return {"$eq": tenant_id}


def is_text_tenant(row: Mapping[str, Any]) -> bool:
    """Whether an entry's tenant is text, as every gateway writes it: not null, a number, a
    list or an object a database writer put there, nor BSON code, which the driver reads as a
    subclass of str but which is no tenant id."""
    return type(row.get("tenantId")) is str


async def first_text_tenant(
    entries: AsyncCollection[dict[str, Any]],
    query: Mapping[str, Any],
    sort: Sequence[tuple[str, int]],
) -> dict[str, Any] | None:
    """The first entry in ``sort`` order that ``query`` matches and whose tenant is text (its
    ``tenantId`` only), for a walk that goes on with ``{"$gt": tenant}``.

    A range on text keeps such a walk on an index (``$type`` made the embedded server scan
    every entry instead), but it also matches a list holding text (MongoDB) and, on the
    embedded server, any list, code, date, binary, ObjectId or object, which sort before or
    among text: a database writer's entry like that is stepped over, never the end of the walk
    (which would hide every tenant after it), nor turned into text to go on from (which would
    skip every tenant below that text). The usual walk meets none and costs one ``find_one``;
    entries to step over are read through a cursor, in batches, not a round trip each."""
    projection = {"tenantId": 1}
    row = await entries.find_one(query, projection=projection, sort=sort)
    if row is None or is_text_tenant(row):
        return row
    rows = entries.find(query, projection=projection, sort=sort)
    try:
        async for row in rows:
            if is_text_tenant(row):
                return row
        return None
    finally:
        await rows.close()
