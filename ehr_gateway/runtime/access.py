"""Who may do what: roles, the permissions they grant, and the caller they are granted to.

A caller's token names the tenants it may act on (or all of them, for staff) and its roles; a
role grants the same permissions on each of those tenants. Another tenant is never readable,
writable or subscribable, whatever the roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ehr_gateway.ehr.tenants import is_tenant_id


class Permission(Enum):
    READ = "settings:read"
    SUBSCRIBE = "settings:subscribe"
    EDIT = "settings:edit"
    INTEGRATE = "integration:edit"
    WRITE_SECRETS = "secrets:write"
    ROLLBACK = "settings:rollback"
    IMPORT = "settings:import"
    READ_AUDIT = "audit:read"
    VERIFY_JWT = "jwt:verify"


class Role(Enum):
    VIEWER = "viewer"
    EDITOR = "editor"
    INTEGRATOR = "integrator"
    SERVICE = "service"


_VIEWER = frozenset({Permission.READ, Permission.SUBSCRIBE})
_EDITOR = _VIEWER | {Permission.EDIT}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Reads settings, readiness, history and diffs; dashboards subscribe.
    Role.VIEWER: _VIEWER,
    # The account admin: the provider and the ordinary blocks, never secrets.
    Role.EDITOR: _EDITOR,
    # The implementation team: everything that opens a path into the EHR.
    Role.INTEGRATOR: _EDITOR
    | {
        Permission.INTEGRATE,
        Permission.WRITE_SECRETS,
        Permission.ROLLBACK,
        Permission.IMPORT,
        Permission.READ_AUDIT,
        Permission.VERIFY_JWT,
    },
    # Runtime services: read, subscribe, verify the JWTs Epic sends.
    Role.SERVICE: _VIEWER | {Permission.VERIFY_JWT},
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    subject: str
    roles: frozenset[Role]
    tenants: frozenset[str] | None  # None: every tenant (staff)
    expires_at: float  # Unix time the credential stops being valid
    # Worked out once: a verified token's principal is kept, and its access read per request.
    permissions: frozenset[Permission] = field(init=False, repr=False, compare=False)
    # What this caller may see: callers with equal access may share one subscription.
    access: tuple[frozenset[str] | None, frozenset[Permission]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        granted: frozenset[Permission] = frozenset()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS[role]
        object.__setattr__(self, "permissions", granted)
        object.__setattr__(self, "access", (self.tenants, granted))

    def may_act_on(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants

    def allows(self, permission: Permission, tenant_id: str | None) -> bool:
        """Whether the caller holds ``permission`` on ``tenant_id`` (on some tenant, for None)."""
        if permission not in self.permissions:
            return False
        return tenant_id is None or self.may_act_on(tenant_id)


class Forbidden(Exception):
    """The caller lacks ``permission`` on ``tenant_id``: for the operation, or (``fields``, as
    dotted setting paths) to change those settings. Says what is missing, not what exists."""

    def __init__(
        self, permission: Permission, tenant_id: str | None, fields: Sequence[str] = ()
    ) -> None:
        self.permission = permission
        self.tenant_id = tenant_id
        self.fields = tuple(fields)
        where = "" if tenant_id is None else f" on tenant {tenant_id}"
        if tenant_id is not None and not is_tenant_id(tenant_id):
            # Not a tenant id: whatever the client sent (any length, NUL, a lone surrogate, an
            # injection attempt) is not repeated back to it, nor into the log.
            where = " on the requested tenant"
        what = f" to change {', '.join(self.fields)}" if self.fields else ""
        super().__init__(f"missing permission {permission.value}{where}{what}")


def roles_named(names: Iterable[object]) -> frozenset[Role]:
    """The known roles among ``names``; unknown ones grant nothing."""
    known = {role.value: role for role in Role}
    return frozenset(known[name] for name in names if isinstance(name, str) and name in known)
