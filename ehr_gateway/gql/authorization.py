"""Every root field names the permission it needs; this extension checks it before the resolver
runs, for the tenant the field's arguments name, and says so in the field's description (with
the roles that hold it, and the settings whose change needs more), so the SDL, GraphiQL and
generated clients show what each operation needs.

A refusal is a GraphQL error with code FORBIDDEN naming the missing permission, never what
exists. It is logged and counted and, when the caller belongs to the tenant it named, kept in
that tenant's audit log (repeats coalesced: `resolvers.denials`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

from graphql import GraphQLError
from pydantic import BaseModel
from strawberry.extensions.field_extension import (
    AsyncExtensionResolver,
    FieldExtension,
    SyncExtensionResolver,
)
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from ehr_gateway.ehr.blocks import guarded_settings
from ehr_gateway.resolvers.audit import current_operation, record_denial
from ehr_gateway.resolvers.context import Context
from ehr_gateway.runtime.access import ROLE_PERMISSIONS, Forbidden, Permission

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

    def __init__(self, permission: Permission, note: str) -> None:
        self.permission = permission
        self.note = note

    def apply(self, field: StrawberryField) -> None:
        # The field objects outlive a schema: every build (each app, each test) applies again.
        description = field.description or ""
        if not description.endswith(self.note):
            field.description = f"{description} {self.note}".strip()

    def resolve(
        self, next_: SyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:  # pragma: no cover - every root resolver is async
        raise NotImplementedError("authorization is checked on async resolvers only")

    @property
    def supports_sync(self) -> bool:
        return False

    def denied(self, context: Context, kwargs: dict[str, Any]) -> Forbidden | None:
        """What the caller lacks for the field called with ``kwargs`` (its arguments, by their
        Python names), if anything: the whole rule, for the resolver and for the whole-request
        fast path (gql.fast_reads), which leaves a refusal to the resolver."""
        tenant_ids: list[Any] = (
            [kwargs["tenant_id"]] if "tenant_id" in kwargs else list(kwargs.get("tenant_ids") or [])
        )
        for tenant_id in tenant_ids or [None]:
            if not context.allows(self.permission, tenant_id):
                return Forbidden(self.permission, tenant_id)
        return None

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context: Context = info.context
        operation = info.field_name
        if context.principal is None:
            raise unauthenticated("a bearer token is required")
        try:
            refusal = self.denied(context, kwargs)
            if refusal is not None:
                raise refusal
            token = current_operation.set(operation)
            try:
                result = next_(source, info, **kwargs)
                return result if inspect.isasyncgen(result) else await result
            finally:
                current_operation.reset(token)
        except Forbidden as denied:  # here, or deeper (a secret an editor tried to set)
            await record_denial(context, denied, operation)
            raise forbidden(denied) from None


def _series(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def requirement(
    permission: Permission,
    changes: Iterable[type[BaseModel]] = (),
    *,
    parts: Iterable[str] = (),
    secrets: bool = True,
) -> str:
    """What a root field's description says it needs: ``permission``, the roles that grant it,
    and the settings among ``changes`` (and ``parts``) that need a further permission, read
    from the models' declarations so a newly guarded setting is listed without editing this."""
    roles = [role.value for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
    note = f"Requires: {permission.value} (roles: {', '.join(roles)})."
    for needed, names in guarded_settings(changes, parts=parts, secrets=secrets).items():
        if needed != permission.value:
            note += f" Changing {_series(names)} also requires {needed}."
    return note


def needs(
    permission: Permission,
    changes: Iterable[type[BaseModel]] = (),
    *,
    parts: Iterable[str] = (),
    secrets: bool = True,
) -> list[FieldExtension]:
    """The extensions of a root field that needs ``permission`` and may change the settings of
    ``changes`` (models) and ``parts`` (guarded parts of a provider's settings); ``secrets``
    False for a write that never changes a write-only secret."""
    return [Requires(permission, requirement(permission, changes, parts=parts, secrets=secrets))]
