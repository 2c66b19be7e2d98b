"""The gateway's schema runs Strawberry's extension hooks from a table kept per extension class
(gql.extension_hooks) instead of looking each up and wrapping it again for every operation.
An operation must run every hook as Strawberry's own runner does: the same hooks, in the same
order, entered and left around the same stages, for generator, async generator and plain
hooks alike, and an error raised by a hook must end the operation as it would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from ehr_gateway.gql.extension_hooks import CachedHooksRunner

QUERY = "query Hello { hello }"
BROKEN = "query Broken { hello }"


def recording(log: list[str]) -> list[type[SchemaExtension]]:
    class Generators(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("operation:enter")
            yield
            log.append("operation:leave")

        def on_parse(self) -> Iterator[None]:
            log.append("parse:enter")
            yield
            log.append("parse:leave")

    class AsyncGenerators(SchemaExtension):
        async def on_validate(self) -> AsyncIterator[None]:
            log.append("validate:enter")
            yield
            log.append("validate:leave")

        async def on_execute(self) -> AsyncIterator[None]:
            log.append("execute:enter")
            yield
            if self.execution_context.operation_name == "Broken":
                raise ValueError("refused by a hook")
            log.append("execute:leave")

    class Plain(SchemaExtension):
        def on_operation(self) -> None:  # type: ignore[override]
            log.append(f"plain operation of {type(self).__name__}")

        async def on_execute(self) -> None:  # type: ignore[override]
            log.append("plain execute")

    return [Generators, AsyncGenerators, Plain]


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


class CachedHooksSchema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)


async def run(schema_class: type[strawberry.Schema], query: str) -> tuple[Any, list[str]]:
    log: list[str] = []
    schema = schema_class(query=Query, extensions=recording(log))
    answers = []
    for _ in range(2):  # the second operation runs from the table the first one filled
        result = await schema.execute(query)
        answers.append((result.data, [str(error) for error in result.errors or []]))
    return answers, log


async def test_hooks_run_as_strawberry_runs_them() -> None:
    cached = await run(CachedHooksSchema, QUERY)
    assert cached == await run(strawberry.Schema, QUERY)
    answers, log = cached
    assert answers[0] == ({"hello": "world"}, [])
    assert log.count("execute:leave") == 2 and log.count("plain operation of Plain") == 2


async def test_a_hook_that_raises_ends_the_operation_as_it_would() -> None:
    cached = await run(CachedHooksSchema, BROKEN)
    assert cached == await run(strawberry.Schema, BROKEN)
    answers, _ = cached
    assert answers[0] == (None, ["refused by a hook"])
