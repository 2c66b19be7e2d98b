"""How many tenants one connection's subscriptions follow at once.

Each tenant a subscription names costs the process an entry in the broker's index (a few hundred
bytes), whether or not the tenant exists: a staff or service token may name any tenant ids, and
a connection's 100 operations of 1,000 made-up ids each held some 40 MB. The count is the sum
over the connection's open subscriptions (a subscription without ``tenantIds`` counts the
caller's tenants, or none for staff, who follow every tenant through one entry)."""

from __future__ import annotations

# Ten subscriptions of the 1,000 tenants one may name; about 4 MB of index at most.
MAX_FOLLOWED_PER_CONNECTION = 10_000


class FollowedTenants:
    """One connection's (or HTTP request's) count of tenants its subscriptions follow."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int = MAX_FOLLOWED_PER_CONNECTION) -> None:
        self.limit = limit
        self.count = 0

    def take(self, tenants: int) -> bool:
        """Count ``tenants`` more, unless that would pass the limit (then False)."""
        if self.count + tenants > self.limit:
            return False
        self.count += tenants
        return True

    def give_back(self, tenants: int) -> None:
        self.count -= tenants
