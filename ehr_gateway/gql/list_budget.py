"""How many history and audit entries one operation may ask for, in all.

Each page is capped (100 entries), but a document may ask for a page under thirty aliases, and a
history page carries a whole settings document per entry: one request asked for 83 MB with four
aliases, and thirty would ask for 600. So every field that reads a list of stored entries
charges what it asks for to one budget per operation, and a field past it is refused as
``COST_LIMIT`` (the fields are non-null, so the operation's data is then null: ask in several
operations). Verifying a tenant's chains reads every
entry of both logs, and is charged a whole budget.

Rows of the tenant directory are small, but each page is a read of its own: they have a budget
of their own, in rows, so that one operation cannot ask for a page under every alias and
repeat the limits allow (30 aliases of 200 rows).

The budgets live in a context variable set when the operation starts to execute: resolvers run
in tasks made from that context, so every field of one operation, and only of that one, shares
it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

MAX_ENTRIES = 100  # one full page of history or audit entries per operation
MAX_DIRECTORY_ROWS = 400  # two full pages of the tenant directory per operation

# [history and audit entries, directory rows] this operation may still ask for.
_remaining: ContextVar[list[int] | None] = ContextVar("list_budget", default=None)


class ListBudget(SchemaExtension):
    """Gives each operation its own budget of entries."""

    def on_execute(self) -> Iterator[None]:
        start_budget()
        yield


def start_budget() -> None:
    """A new operation's budgets (also for the operations gql.fast_writes runs)."""
    _remaining.set([MAX_ENTRIES, MAX_DIRECTORY_ROWS])


def charge(field: str, entries: int) -> None:
    """Take ``entries`` from this operation's budget, or refuse ``field`` (COST_LIMIT)."""
    remaining = _remaining.get()
    if remaining is None:  # outside an operation (a resolver called directly)
        return
    if entries > remaining[0]:
        raise GraphQLError(
            f"{field}: the operation asks for more than {MAX_ENTRIES} history and audit "
            "entries in all (a chain verification counts as all of them); ask in several "
            "operations",
            extensions={"code": "COST_LIMIT", "limit": MAX_ENTRIES},
        )
    remaining[0] -= entries


def charge_rows(field: str, rows: int) -> None:
    """Take ``rows`` from this operation's budget of directory rows, or refuse ``field``
    (COST_LIMIT)."""
    remaining = _remaining.get()
    if remaining is None:
        return
    if rows > remaining[1]:
        raise GraphQLError(
            f"{field}: the operation asks for more than {MAX_DIRECTORY_ROWS} tenant directory "
            "rows in all; ask in several operations",
            extensions={"code": "COST_LIMIT", "limit": MAX_DIRECTORY_ROWS},
        )
    remaining[1] -= rows
