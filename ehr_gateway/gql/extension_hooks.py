"""Strawberry's schema extension hooks, looked up once per extension class and stage.

For every operation, Strawberry asks each of the schema's extensions (seven here) for each stage
(operation, parsing, validation, execution) whether it has a hook, inspects the hook's kind and,
for a generator hook, wraps it with ``contextlib.contextmanager`` anew (``functools.wraps``
copying its attributes each time): about 30 lookups and 8 wrappers per request, with the same
answer every time, since a hook is found on the extension's class. Here the answer is kept per
class and stage, and only bound to the operation's extension instance; the hooks run exactly as
Strawberry runs them (same order, same context managers, same errors)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# (how it runs, the hook wrapped for any instance); None: the class has no hook for the stage.
_Found = tuple[str, Callable[..., Any]] | None
_GENERATOR, _ASYNC_GENERATOR, _CALLABLE = "generator", "async generator", "callable"
_found: dict[tuple[type[SchemaExtension], str], _Found] = {}


def _look_up(extension_class: type[SchemaExtension], stage: str) -> _Found:
    hook: Any = getattr(extension_class, stage)
    if hook is getattr(SchemaExtension, stage):
        return None
    if inspect.isgeneratorfunction(hook):
        return _GENERATOR, contextlib.contextmanager(hook)
    if inspect.isasyncgenfunction(hook):
        return _ASYNC_GENERATOR, contextlib.asynccontextmanager(hook)
    if callable(hook):
        return _CALLABLE, hook
    raise ValueError(f"Hook {stage} on {extension_class} must be callable, received {hook!r}")


class _CachedHooks(ExtensionContextManagerBase):
    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        try:
            found = _found[key]
        except KeyError:
            found = _found[key] = _look_up(type(extension), self.HOOK_NAME)
        if found is None:
            return None
        kind, hook = found
        if kind == _CALLABLE:
            return self.from_callable(extension, hook)
        return WrappedHook(
            extension=extension, hook=partial(hook, extension), is_async=kind == _ASYNC_GENERATOR
        )


class _Operation(_CachedHooks, OperationContextManager):
    pass


class _Validation(_CachedHooks, ValidationContextManager):
    pass


class _Parsing(_CachedHooks, ParsingContextManager):
    pass


class _Executing(_CachedHooks, ExecutingContextManager):
    pass


class CachedHooksRunner(SchemaExtensionsRunner):
    """Strawberry's runner, whose stages find their hooks in the per-class table."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
