"""Every mutation takes an idempotency key: the ``idempotencyKey`` argument, or the request's
``Idempotency-Key`` header (the IETF draft's name). A retry with the same key returns the first
outcome and stores nothing twice (resolvers.writes keeps the key with the version it stored).

The key is checked here: 1 to 255 visible ASCII characters; the header, without the whitespace
around it, may also be sent as a structured-field string (quoted, escapes undone). The argument
and the header may both be given only if they agree. A problem with the key is a
ValidationFailed result naming ``idempotencyKey``: nothing runs."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from typing import Any

import http_sf
import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.extensions.field_extension import (
    AsyncExtensionResolver,
    FieldExtension,
    SyncExtensionResolver,
)
from strawberry.types import Info
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField

from ehr_gateway.gql.results import ValidationFailed
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.resolvers.writes import IDEMPOTENCY_RETENTION, Idempotency, current_idempotency
from ehr_gateway.storage.chain import canonical

ARGUMENT = "idempotencyKey"
INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
IDEMPOTENCY_KEY_MISMATCH = "IDEMPOTENCY_KEY_MISMATCH"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# What HTTP does not count as part of a field value (RFC 9110, 5.5: optional whitespace).
_OWS = " \t"
_HOURS = int(IDEMPOTENCY_RETENTION.total_seconds() // 3600)

DESCRIPTION = (
    "A key the client makes for this write (1 to 255 visible ASCII characters, e.g. a UUID), "
    "or the Idempotency-Key HTTP header; if both are sent they must be equal. A retry with the "
    f"same key, by the same caller to the same tenant, within {_HOURS} hours of the stored "
    "version, returns that version (what the first attempt answered, or would have) and stores "
    "nothing; the same key with other arguments or another mutation is refused "
    "(IDEMPOTENCY_KEY_REUSED). Keys dedupe stored writes: if the first attempt stored nothing, "
    "the retry runs as a new write. Send it to be able to retry a write whose answer was lost."
)
NO_EFFECT = (
    "Accepted like every mutation's, and checked, but without effect: this mutation stores "
    "nothing, so there is nothing to repeat."
)


class Idempotent(FieldExtension):
    """Adds the ``idempotencyKey`` argument to a root mutation, checks it and the header, and
    makes it the key of the write the resolver makes. ``stores``: False for mutations that store
    nothing (the key is checked and documented as having no effect)."""

    def __init__(self, *, stores: bool = True) -> None:
        self.stores = stores

    def apply(self, field: StrawberryField) -> None:
        field.arguments = [
            *field.arguments,
            StrawberryArgument(
                python_name="idempotency_key",
                graphql_name=None,
                type_annotation=StrawberryAnnotation(str | None),
                default=None,
                description=DESCRIPTION if self.stores else NO_EFFECT,
            ),
        ]

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:  # pragma: no cover - every root resolver is async
        raise NotImplementedError("idempotency keys are taken by async resolvers only")

    @property
    def supports_sync(self) -> bool:
        return False

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context: Context = info.context
        argument = kwargs.pop("idempotency_key", None)
        key = key_of(argument, context)
        if isinstance(key, Failed):
            return ValidationFailed.of(key)
        if key is None or not self.stores:
            result = next_(source, info, **kwargs)
            return await result if inspect.isawaitable(result) else result
        request = canonical({"operation": info.field_name, "arguments": _plain(kwargs)})
        token = current_idempotency.set(Idempotency(key, context.actor, request))
        try:
            result = next_(source, info, **kwargs)
            return await result if inspect.isawaitable(result) else result
        finally:
            current_idempotency.reset(token)


def key_of(argument: str | None, context: Context) -> str | Failed | None:
    """The mutation's key (None: none sent), or why it is refused. The message never repeats
    the key. (Also asked by the fast path for writes, gql.fast_writes, which leaves a refused
    key to this extension.)"""
    headers = context.record.idempotency_keys if context.record is not None else None
    header: str | None = None
    if headers is not None:
        if len(headers) > 1:
            return _invalid("send one Idempotency-Key header, not several")
        header = _header_key(headers[0])
        if header is None or not _KEY.fullmatch(header):
            return _invalid("the Idempotency-Key header must be 1 to 255 visible ASCII characters")
    if argument is not None and not _KEY.fullmatch(argument):
        return _invalid("must be 1 to 255 visible ASCII characters")
    if argument is not None and header is not None and argument != header:
        return Failed.one(
            (ARGUMENT,),
            IDEMPOTENCY_KEY_MISMATCH,
            "differs from the Idempotency-Key header; send one key, or the same in both",
        )
    return argument if argument is not None else header


def _header_key(value: str) -> str | None:
    """The key a header value names: the value without surrounding whitespace, or, quoted, the
    RFC 8941 sf-string it is (escapes undone); None for a quoted value that is not one."""
    value = value.strip(_OWS)
    if not value.startswith('"'):
        return value
    try:
        item = http_sf.parse(value.encode("latin-1"), tltype="item")
    except http_sf.StructuredFieldError:
        return None
    # An item is (value, parameters); a string with parameters names no key.
    if not isinstance(item, tuple):
        return None
    parsed, parameters = item
    return parsed if isinstance(parsed, str) and not parameters else None


def _invalid(message: str) -> Failed:
    return Failed.one((ARGUMENT,), INVALID_IDEMPOTENCY_KEY, message)


def _plain(value: Any) -> Any:
    """Resolver arguments (input objects, enums, unset fields) as JSON values, so a request is
    compared by what it asks, however its document spelled it (inline or in variables)."""
    if value is strawberry.UNSET:
        return {"$unset": True}
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not strawberry.UNSET
        }
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
