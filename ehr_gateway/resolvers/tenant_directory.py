"""The tenant directory: every tenant the caller may read, a page at a time, with its EHR,
version, readiness and last change, filtered by EHR, readiness and changed-since.

Rows come from the directory part stored with each tenant's current settings
(storage.directory), read through an index, never by assessing tenants. Pages are keyset pages:
the cursor carries the last row's key in the page's order, and the next page is the range after
it, so a deep page costs what the first does, and paging to the end while others write meets
every tenant once (by id) or each tenant's latest change (by change).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime

from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.ehr.tenants import TENANT_ID
from ehr_gateway.resolvers.context import Context
from ehr_gateway.storage.directory import (
    BY_CHANGE,
    BY_ID,
    CHANGED_SINCE_OVERLAP_S,
    DirectoryQuery,
    DirectoryRow,
)

DEFAULT_PAGE = 50
PAGE_MAX = 200
# What a changedSince poller subtracts from the last changedAt it saw (storage.directory).
OVERLAP_S = CHANGED_SINCE_OVERLAP_S
# A cursor this gateway hands out is well under this; anything longer is not one.
_CURSOR_MAX = 256
_CHANGE_KEY = re.compile(rf"[0-9]{{14}} {TENANT_ID.pattern}")


class BadArgument(ValueError):
    """An argument of the query is out of range or unreadable; says which, never its value."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


@dataclass(frozen=True, slots=True)
class TenantPage:
    rows: list[DirectoryRow]
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(order: str, key: str) -> str:
    """An opaque cursor for the row with ``key`` in ``order``."""
    raw = json.dumps({"o": order, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, order: str) -> str:
    """The key a cursor of ``order`` carries; BadArgument for anything this query did not hand
    out (another order's cursor: the filters changed)."""
    refused = BadArgument("after", "not a cursor of this query: pass a page's endCursor")
    if len(cursor) > _CURSOR_MAX:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError):
        raise refused from None
    if not isinstance(decoded, dict) or decoded.get("o") != order:
        raise refused
    key = decoded.get("k")
    shape = TENANT_ID if order == BY_ID else _CHANGE_KEY
    if not isinstance(key, str) or not shape.fullmatch(key):
        raise refused
    return key


def check_page_size(first: int) -> None:
    if not 1 <= first <= PAGE_MAX:
        raise BadArgument("first", f"must be between 1 and {PAGE_MAX}")


async def tenant_page(
    context: Context,
    *,
    first: int,
    after: str | None,
    provider: EhrProvider | None,
    ready: bool | None,
    changed_since: datetime | None,
) -> TenantPage:
    """Up to ``first`` rows of the tenants the caller may read, after ``after``: by tenant id,
    or with ``changed_since`` by last change, oldest first (a tenant that changes while a client
    pages moves to the end, where the client meets it again with its newest version, rather than
    behind the client, where it would be missed)."""
    check_page_size(first)
    principal = context.principal
    assert principal is not None  # the field's Requires extension saw to it
    order = BY_CHANGE if changed_since is not None else BY_ID
    query = DirectoryQuery(
        # Staff see every tenant; anyone else only the tenants the token names, so another
        # tenant's existence never shows.
        tenants=principal.tenants,
        provider=provider,
        ready=ready,
        changed_since=changed_since,
        after=None if after is None else decode_cursor(after, order),
        limit=first,
    )
    page = await context.repository.directory_page(query)
    # Where the page's reading ended, though its last row may not be listed (storage.directory).
    end = encode_cursor(order, page.end) if page.end is not None else after
    return TenantPage(page.rows, page.more, end)
