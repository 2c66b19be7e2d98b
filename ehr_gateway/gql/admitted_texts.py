"""What the fast paths (gql.fast_reads, gql.fast_writes) keep per document text a client sent:
the texts the generic path admitted, and the plans made for them. Both are keyed by the client's
text and bounded by bytes, as every cache keyed by a client's text: each entry keeps the text.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Hashable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from cachetools import LRUCache
from graphql import DocumentNode, OperationDefinitionNode
from graphql.language import OperationType as AstOperationType

from ehr_gateway.gql.compiled_reads import BYTES_PER_STEP, Unsupported
from ehr_gateway.gql.documents import ENTRY_BYTES

logger = logging.getLogger("ehr_gateway.graphql")
MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Admitted:
    """A document text the generic path accepted for one operation name."""

    document: DocumentNode
    operation: OperationDefinitionNode
    conditions: tuple[str, ...]  # the variables @skip and @include name
    label_names: list[str] | None  # the root fields, for the metrics label
    size: int


class _Sized(Protocol):
    @property
    def size(self) -> int: ...


Entry = TypeVar("Entry", bound=Admitted)
Compiled = TypeVar("Compiled")


def _size(entry: _Sized) -> int:
    return entry.size


class AdmittedTexts(Generic[Entry]):
    """The document texts the generic path accepted for one kind of operation, by text and
    operation name, each with what its fast path keeps of it (an ``Admitted``)."""

    def __init__(self, kind: AstOperationType) -> None:
        self._kind = kind
        self._entries: LRUCache[Hashable, Entry] = LRUCache(MAX_BYTES, getsizeof=_size)

    def knows(self, text: str, operation_name: str | None) -> bool:
        return (text, operation_name) in self._entries

    def get(self, text: str, operation_name: str | None) -> Entry | None:
        return self._entries.get((text, operation_name))

    def admit(
        self,
        text: str,
        operation_name: str | None,
        document: DocumentNode,
        entry: Callable[[OperationDefinitionNode, int], Entry],
    ) -> None:
        """``text`` was parsed, held to the limits and validated, and ran as an operation of
        this kind named ``operation_name`` (the name Strawberry found, the request may have sent
        none): ``entry`` makes what is kept of it from its operation and its size in bytes."""
        if (text, operation_name) in self._entries:
            return
        operation = find_operation(document, operation_name)
        if operation is None or operation.operation != self._kind:
            return
        admitted = entry(operation, ENTRY_BYTES + sys.getsizeof(text))
        names = [operation_name]
        if operation_name is not None and find_operation(document, None) is operation:
            names.append(None)  # the only operation: a request need not name it
        for name in names:
            with suppress(ValueError):  # larger than the whole budget: not kept
                self._entries[(text, name)] = admitted


@dataclass(frozen=True, slots=True)
class Plan(Generic[Compiled]):
    compiled: Compiled | None  # None: not answered here
    reason: str
    plain_json: bool  # orjson writes it as the standard encoder would
    size: int


class Plans(Generic[Compiled]):
    """The plans of a fast path, one per document text, operation and set of ``@skip`` and
    ``@include`` values, including the plans that send a document to the generic path."""

    def __init__(self, what: str) -> None:
        self._what = what  # for the log: "read", "write"
        self._plans: LRUCache[Hashable, Plan[Compiled]] = LRUCache(MAX_BYTES, getsizeof=_size)

    def plan(
        self,
        text: str,
        name: str | None,
        conditions: tuple[Any, ...],
        compile_: Callable[[], tuple[Compiled, bool, int]],
    ) -> Plan[Compiled]:
        """The plan for ``text``, ``name`` and ``conditions``; ``compile_`` makes it (what is
        compiled, whether orjson writes it plainly, the compiler's steps) or raises Unsupported
        when the generic path must run it."""
        key = (text, name, conditions)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        compiled: Compiled | None = None
        reason = "answered"
        plain = False
        steps = 0
        try:
            compiled, plain, steps = compile_()
        except Unsupported as why:
            reason = str(why)
        except Exception:
            # A document the compiler failed on: the generic path runs it, as it always did.
            logger.warning("no fast %s plan for a document", self._what, exc_info=True)
            reason = "compiler error"
        plan = Plan(
            compiled, reason, plain,
            ENTRY_BYTES + sys.getsizeof(text) + BYTES_PER_STEP * (steps + 1),
        )  # fmt: skip
        with suppress(ValueError):
            self._plans[key] = plan
        return plan


def find_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    for operation in operations:
        if operation.name is not None and operation.name.value == name:
            return operation
    return None
