"""Tenant ids: which strings name a tenant. Anything else names none, is never looked up or
stored, and may not even be valid Unicode (JSON can carry a lone surrogate)."""

from __future__ import annotations

import re

TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

INVALID_TENANT_ID = "INVALID_TENANT_ID"
TENANT_ID_RULE = "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_tenant_id(text: str) -> bool:
    return TENANT_ID.fullmatch(text) is not None
