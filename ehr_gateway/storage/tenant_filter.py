"""The filter that picks one tenant's history and audit entries.

``{"tenantId": {"$eq": id}}``, never the bare ``{"tenantId": id}``, though MongoDB reads both
alike. The embedded server (nx-27017 on SQLite) reads a bare value as "equal to it, or an array
containing it", an OR that its SQLite planner cannot answer from the ``(tenantId, ...)``
indexes unless a single-field index on ``tenantId`` exists: every such find, even of one
version, read every entry of every tenant, so a page of history cost as much as the whole
collection. ``$eq`` is answered from the index, and a sort on the index's second key with a
limit stops at the limit, as on MongoDB.
"""

from __future__ import annotations


def tenant_is(tenant_id: str) -> dict[str, str]:
    """The ``tenantId`` condition of a find on one tenant's entries."""
    return {"$eq": tenant_id}
