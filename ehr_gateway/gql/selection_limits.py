"""Bounds on how much work validating a document can take, checked before it is validated.

Validation is not linear in a document's tokens. The rule that overlapping fields can be merged
compares every two selections of one response name at one place (fields merged in from inline
fragments and fragment spreads included), so a field repeated a thousand times costs a million
comparisons; and the depth limiter follows a fragment once for every spread of it, so fragments
that spread the next one twice cost twice as much with each level. Both are bounded here by one
pass over the document that expands fragments where they are spread and stops as soon as a
limit is passed:

- selections (operations and fragment definitions, fields, inline fragments and fragment
  spreads), each fragment counted at every spread and an operation counted as four, bound the
  work that is linear in the document as validated;
- repeats: at one place (the same path of response names from the operation), how many times
  one response name may be selected, and how many fragment spreads there may be, bound the
  pairwise comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

_SPREADS = "..."  # the key fragment spreads are counted under at a place (never a field name)


DEFAULT_MAX_SELECTIONS = 250
OPERATION_WEIGHT = 4  # selections an operation definition counts as
DEFAULT_MAX_REPEATS = 16


@dataclass(frozen=True, slots=True)
class SelectionLimits:
    max_selections: int = DEFAULT_MAX_SELECTIONS
    max_repeats: int = DEFAULT_MAX_REPEATS


class _Place:
    """The selections of one response name at one path, and where their own selections go."""

    __slots__ = ("count", "inner")

    def __init__(self) -> None:
        self.count = 0
        self.inner: dict[str, _Place] = {}


def _counted(places: dict[str, _Place], key: str) -> _Place:
    """The place of ``key``, counted once more."""
    place = places.get(key)
    if place is None:
        place = places[key] = _Place()
    place.count += 1
    return place


_Leave = str  # on the stack: the fragment whose expansion ends here
_Visit = tuple[SelectionSetNode, dict[str, _Place]]


def exceeded(document: DocumentNode, limits: SelectionLimits) -> GraphQLError | None:
    """The error for the first limit ``document`` passes, or None."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    walk = _Walk(fragments, limits)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            error := walk.expand(definition.selection_set, None)
        ):
            return error
    # Validation also visits fragments no operation spreads (and then reports them unused).
    for name, fragment in fragments.items():
        if name not in walk.reached:
            walk.reached.add(name)
            if error := walk.expand(fragment.selection_set, name):
                return error
    return None


class _Walk:
    def __init__(
        self, fragments: dict[str, FragmentDefinitionNode], limits: SelectionLimits
    ) -> None:
        self._fragments = fragments
        self._limits = limits
        self._selections = 0
        self.reached: set[str] = set()

    def expand(self, root: SelectionSetNode, fragment: str | None) -> GraphQLError | None:
        """Count the selections under ``root`` (the selection set of an operation, or of
        ``fragment``), expanding spreads. Depth first, with an explicit stack: a fragment
        spread inside its own expansion is skipped (validation reports the cycle)."""
        limits = self._limits
        active = {fragment} if fragment else set()
        stack: list[_Visit | _Leave] = [(root, {})]
        # The definition itself. An operation costs validation several times a field: the
        # variable rules walk each operation, and all it spreads, on their own.
        self._selections += 1 if fragment else OPERATION_WEIGHT
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                active.discard(item)
                continue
            selection_set, places = item
            for selection in selection_set.selections:
                self._selections += 1
                if self._selections > limits.max_selections:
                    return GraphQLError(
                        f"The document has more than {limits.max_selections} selections "
                        "(operations, fields and fragments, a fragment counted at each of its "
                        "spreads).",
                        selection,
                    )
                if isinstance(selection, FieldNode):
                    name = (selection.alias or selection.name).value
                    place = _counted(places, name)
                    if place.count > limits.max_repeats:
                        return GraphQLError(
                            f"Field '{name}' is selected more than {limits.max_repeats} times "
                            "at one place of the document (fragments included).",
                            selection,
                        )
                    if selection.selection_set is not None:
                        stack.append((selection.selection_set, place.inner))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((selection.selection_set, places))
                elif isinstance(selection, FragmentSpreadNode):
                    if _counted(places, _SPREADS).count > limits.max_repeats:
                        return GraphQLError(
                            f"More than {limits.max_repeats} fragments are spread at one place "
                            "of the document.",
                            selection,
                        )
                    name = selection.name.value
                    definition = self._fragments.get(name)
                    if definition is None or name in active:
                        continue  # unknown, or a cycle: validation reports either
                    self.reached.add(name)
                    active.add(name)
                    stack.append(name)
                    stack.append((definition.selection_set, places))
        return None
