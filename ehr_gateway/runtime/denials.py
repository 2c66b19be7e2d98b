"""Denied attempts: which ones a tenant's audit log keeps, and the count of all of them.

A caller refused on a tenant its token does not name has no standing there: its attempt goes to
the security log and a metric, never into that tenant's audit log. Otherwise any token could
append, at request rate, to the hash-chained log of any tenant (even one that does not exist),
and every ``auditIntegrity`` would read it all back.

A caller refused a permission on one of its own tenants is kept in that tenant's audit log, but
once per (tenant, subject, operation, missing permission) per minute in each process: the first
refusal says who tried what; its repeats would only let one caller flood the log. They are
logged and counted all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from enum import Enum

from cachetools import TTLCache

from ehr_gateway.ehr.tenants import is_tenant_id
from ehr_gateway.runtime.access import Forbidden, Principal

# Per key of a process: an audited refusal hides its repeats for this long.
WINDOW_S = 60.0
# Keys remembered at once. In-tenant keys are few per caller (tenants x root fields x
# permissions); beyond this the oldest is forgotten, so its next repeat is audited again.
MAX_KEYS = 10_000


class DenialKind(Enum):
    OTHER_TENANT = "other_tenant"  # a tenant the caller's token does not name
    PERMISSION = "permission"  # a permission the caller lacks (on its own tenants, or any)


class Denials:
    """The process's count of refusals by kind, and which in-tenant refusals to audit."""

    def __init__(self, *, timer: Callable[[], float] = time.monotonic) -> None:
        self._audited: TTLCache[Hashable, bool] = TTLCache(MAX_KEYS, WINDOW_S, timer=timer)
        self.by_kind: dict[str, int] = {kind.value: 0 for kind in DenialKind}
        self.coalesced = 0  # in-tenant refusals left out of the audit log as repeats
        self.unaudited = 0  # refusals to be audited whose audit entry the database refused

    @staticmethod
    def kind(principal: Principal | None, denied: Forbidden) -> DenialKind:
        tenant_id = denied.tenant_id
        if tenant_id is not None and (principal is None or not principal.may_act_on(tenant_id)):
            return DenialKind.OTHER_TENANT
        return DenialKind.PERMISSION

    def count(self, kind: DenialKind) -> None:
        self.by_kind[kind.value] += 1

    def should_audit(self, principal: Principal, denied: Forbidden, operation: str) -> bool:
        """Whether this in-tenant refusal goes into the tenant's audit log: the first of its key
        in the window does (checked and noted with no await between, so concurrent requests
        of one process cannot both pass)."""
        tenant_id = denied.tenant_id
        if tenant_id is None or not is_tenant_id(tenant_id):
            return False  # no tenant named, or an id that names none: no audit log to keep it in
        key = (tenant_id, principal.subject, operation, denied.permission.value)
        if key in self._audited:
            self.coalesced += 1
            return False
        self._audited[key] = True
        return True


def loggable(text: str, limit: int = 64) -> str:
    """``text`` as a log line carries it: cut to ``limit`` characters, with its real length.
    It is escaped once, by the line's formatter (server.logs: JSON writes every control and
    everything past ASCII as an escape, text lines escape controls, format characters and
    lone surrogates); escaped here as well, a subject ``é`` read back from a JSON line as the
    text ``\\xe9``."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} chars)"
