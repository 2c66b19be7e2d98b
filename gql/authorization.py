"""Every root field names the permission it needs; this extension checks it before the resolver
runs, for the tenant the field's arguments name.

A refusal is a GraphQL error with code FORBIDDEN naming the missing permission, never what
exists. It is logged and counted and, when the caller belongs to the tenant it named, kept in
that tenant's audit log (repeats coalesced: `resolvers.denials`).
"""

from __future__ import annotations

import inspect
from typing import Any

from graphql import GraphQLError
from strawberry.extensions.field_extension import (
    AsyncExtensionResolver,
    FieldExtension,
    SyncExtensionResolver,
)
from strawberry.types import Info

from resolvers.access import Forbidden, Permission
from resolvers.audit import current_operation, record_denial
from resolvers.context import Context

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"


def unauthenticated(reason: str) -> GraphQLError:
    return GraphQLError(f"not authenticated: {reason}", extensions={"code": UNAUTHENTICATED})


def forbidden(denied: Forbidden) -> GraphQLError:
    extensions: dict[str, Any] = {"code": FORBIDDEN, "permission": denied.permission.value}
    if denied.fields:
        extensions["fields"] = list(denied.fields)
    return GraphQLError(str(denied), extensions=extensions)


class Requires(FieldExtension):
    """The caller needs ``permission`` on the tenant named by the ``tenantId`` argument, on every
    tenant of ``tenantIds``, or (for fields without either) on at least one tenant; the
    resolver then answers only about the caller's tenants."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:  # pragma: no cover - every root resolver is async
        raise NotImplementedError("authorization is checked on async resolvers only")

    @property
    def supports_sync(self) -> bool:
        return False

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context: Context = info.context
        operation = info.field_name
        if context.principal is None:
            raise unauthenticated("a bearer token is required")
        tenant_ids: list[Any] = (
            [kwargs["tenant_id"]] if "tenant_id" in kwargs else list(kwargs.get("tenant_ids") or [])
        )
        try:
            for tenant_id in tenant_ids or [None]:
                if not context.allows(self.permission, tenant_id):
                    raise Forbidden(self.permission, tenant_id)
            token = current_operation.set(operation)
            try:
                result = next_(source, info, **kwargs)
                return result if inspect.isasyncgen(result) else await result
            finally:
                current_operation.reset(token)
        except Forbidden as denied:  # here, or deeper (a secret an editor tried to set)
            await record_denial(context, denied, operation)
            raise forbidden(denied) from None


def needs(permission: Permission) -> list[FieldExtension]:
    """The extensions of a root field that needs ``permission``."""
    return [Requires(permission)]
