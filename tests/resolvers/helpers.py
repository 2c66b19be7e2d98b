"""What the resolver tests assert on: the outcome of a write."""

from __future__ import annotations

from ehr_gateway.resolvers.outcomes import Failed, Outcome, Saved


def saved(outcome: Outcome) -> int:
    """The version ``outcome`` stored; fails the test for any other outcome."""
    assert isinstance(outcome, Saved), outcome
    return outcome.settings.version


def failed(outcome: object) -> list[tuple[tuple[str, ...], str]]:
    """The (path, code) of each refusal in ``outcome``; fails the test for any other outcome."""
    assert isinstance(outcome, Failed), outcome
    return [(error.path, error.code) for error in outcome.errors]
